# No models. The module exists because Django sends post_migrate only to apps that have one, and
# statement_timeout.py's handler listens for this app's (apps.py).

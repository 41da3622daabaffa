# No models. The module exists because Django sends pre_migrate and post_migrate only to apps that have
# one, and statement_timeout.py's handlers listen for this app's (apps.py).

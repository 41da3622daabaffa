"""A baked project pulls later template fixes with cruft, keeping its answers."""

import json
import shutil
import sys

from conftest import ROOT, run

CRUFT = [sys.executable, "-m", "cruft"]
ANSWERS = {
    "project_name": "Cruft Test",
    "wsgi_server": "waitress",
    "pgbouncer_pool_mode": "session",
    "use_worker": False,
}


def git(*args, cwd):
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return run(["git", *identity, *args], cwd=cwd)


def snapshot_template(destination):
    """The working tree as a git repository of its own, so a test can commit template changes to it."""
    shutil.copytree(
        ROOT, destination, ignore=shutil.ignore_patterns(".git", ".cache", ".venv", "__pycache__", ".*_cache")
    )
    git("init", "-q", "-b", "main", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "template v1", cwd=destination)


def test_cruft_update_pulls_a_template_change_and_keeps_the_answers(tmp_path):
    template, output = tmp_path / "template", tmp_path / "out"
    snapshot_template(template)
    run(
        [
            *CRUFT,
            "create",
            str(template),
            "--no-input",
            "--output-dir",
            str(output),
            "--extra-context",
            json.dumps(ANSWERS),
        ]
    )
    project = output / "cruft_test"
    assert (project / "config/serve_waitress.py").exists()
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "baked", cwd=project)

    # A later template fix: a new nginx setting, and a new line in a file only waitress bakes.
    nginx_conf = template / "{{cookiecutter.project_slug}}/config/nginx.conf.erb"
    nginx_conf.write_text(nginx_conf.read_text().replace("server_tokens off;", "server_tokens off;\n\tetag on;"))
    launcher = template / "{{cookiecutter.project_slug}}/config/serve_waitress.py"
    launcher.write_text(launcher.read_text() + "\n# template v2\n")
    git("commit", "-q", "-am", "template v2", cwd=template)

    assert run([*CRUFT, "check"], cwd=project, check=False).returncode != 0, "cruft should see the project is behind"
    run([*CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files"], cwd=project)

    assert "etag on;" in (project / "config/nginx.conf.erb").read_text()
    assert (project / "config/serve_waitress.py").read_text().endswith("# template v2\n")
    # The answers still hold: no other server's files came back, the worker stays out.
    assert not (project / "config/gunicorn.conf.py").exists()
    assert not (project / "example/tasks.py").exists()
    recorded = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert {key: recorded[key] for key in ANSWERS} == ANSWERS
    run([*CRUFT, "check"], cwd=project)

"""The baked README's "Production-like local run", followed to the letter, then used from a real browser.

Every command of the section is run as written, in a fresh checkout, as the root user of a container
would run them (sudo dropped): install the packages, make the virtualenv, `bin/dyno web`, and the one-off
`bin/dyno run python manage.py createsuperuser`, answered on a pseudo-terminal as a person would. Then
Debian's headless Chromium, driven by selenium through Debian's chromedriver (never a downloaded browser),
opens the README's URL, logs in to /admin/ and sees the staff page /pgbouncer/ (within 1280 px, from a
screenshot), all over plain http on 127.0.0.1. Needs `apt-get install chromium chromium-driver` and
selenium (tests/requirements.txt).
"""

import os
import pty
import re
import select
import shutil
import subprocess
import time

import pytest

import realstack as rs
from conftest import figure

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # as root, and in containers, Chromium's sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",  # screenshots of the page itself, at the window's full width
]
WIDTH = 1280  # a laptop's browser window: the pages must fit it
PHONE_WIDTH = 390  # a phone's (an iPhone 12 to 15's CSS pixels)
ADMIN, ADMIN_EMAIL, ADMIN_PASSWORD = "admin", "admin@example.com", "Browser-test-passw0rd-9731"
ROOT_USER = rs.User("root", 0, 0, "/root")


def readme_section(project):
    """(shell commands, URL) of the README's "Production-like local run", before its first subsection."""
    text = (project / "README.md").read_text()
    section = re.split(r"\n##+ ", text.split("## Production-like local run", 1)[1], maxsplit=1)[0]
    commands = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return commands, re.search(r"<(http://127\.0\.0\.1:\d+/)>", section)[1]


def answer_on_a_terminal(argv, cwd, env, dialogue, timeout=300):
    """Run argv on a new pseudo-terminal, typing each answer once its prompt appears; returns (exit
    status, everything the terminal showed)."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal, stdin, stdout and stderr
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    shown, pending = b"", list(dialogue)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1)
            if ready:
                try:
                    chunk = os.read(terminal, 4096)
                except OSError:  # EIO: every process holding the terminal has gone
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0].encode() in shown.rsplit(b"\n", 1)[-1]:
                os.write(terminal, pending.pop(0)[1].encode() + b"\n")
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def node_major():
    result = subprocess.run(["node", "-p", "process.versions.node"], capture_output=True, text=True)
    return int(result.stdout.split(".")[0]) if result.returncode == 0 else 0


def serves(url):
    try:
        return rs.http_request(int(url.rsplit(":", 1)[1].strip("/")), "GET", "/", timeout=10)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def readme_run(bake_once, workdir):
    """The README's commands, run in order in a fresh checkout, in the module's own network namespace and
    /tmp (PyPI and Debian's mirror reached from the host's network); yields what the browser tests need."""
    if os.geteuid() != 0:
        pytest.fail("the README test installs Debian packages and runs bin/dyno as root, as a container does")
    base = workdir / "readme"
    base.mkdir(mode=0o755)  # root's, readable by every user, as a container's /app
    base.chmod(0o755)
    project = base / "app"
    shutil.copytree(bake_once(), project, symlinks=True)
    commands, url = readme_section(project)
    # A fresh Debian machine's environment: Debian's python3, no virtualenv active, nothing configured.
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    apt_config = base / "apt.conf"  # wait for other apt users rather than fail on the dpkg lock
    apt_config.write_text('DPkg::Lock::Timeout "600";\n')
    ran, web = [], None
    try:
        for command in commands:
            if command.startswith("sudo apt-get install "):
                apt_env = dict(env, DEBIAN_FRONTEND="noninteractive", APT_CONFIG=str(apt_config))
                with rs.host_network():
                    result = rs.run_as(
                        ROOT_USER, ["bash", "-c", command.removeprefix("sudo ")], env=apt_env, timeout=900
                    )
                ran.append((command, result.returncode, result.stdout[-500:]))
            elif command.startswith("sudo npm install -g heroku") and node_major() < 20:
                # The README sends a machine whose Node.js is older than the CLI's 20 (Debian 12) to Heroku's
                # standalone installer, whose host this network does not reach; .ci/run installed the CLI.
                assert "curl https://cli-assets.heroku.com/install.sh | sh" in (project / "README.md").read_text()
                assert shutil.which("heroku", path=env["PATH"]), "no Heroku CLI: run .ci/run first"
                ran.append((command, None, "the standalone installer's CLI"))
            elif command == "bin/dyno web":
                web = rs.Dyno(project, "web", env, ROOT_USER, base / "web.log").__enter__()
                web.wait_for(lambda: serves(url), f"{url} to answer 200", timeout=300)
                ran.append((command, None, "serving"))
            elif command == "bin/dyno run python manage.py createsuperuser":
                dialogue = [
                    ("Username", ADMIN),
                    ("Email address:", ADMIN_EMAIL),
                    ("Password:", ADMIN_PASSWORD),
                    ("Password (again):", ADMIN_PASSWORD),
                ]
                status, shown = answer_on_a_terminal(["/bin/bash", "-c", command], project, env, dialogue)
                assert status == 0 and "Superuser created successfully." in shown, shown[-3000:]
                ran.append((command, status, shown))
            else:  # the virtualenv and the CLI: pip and npm need their registries. As root, sudo is not needed.
                with rs.host_network():
                    argv = ["bash", "-c", command.removeprefix("sudo ")]
                    result = rs.run_as(ROOT_USER, argv, env=env, cwd=project, timeout=900)
                ran.append((command, result.returncode, result.stdout[-500:]))
        yield {"project": project, "url": url, "ran": ran, "web": web, "commands": commands}
    finally:
        if web:
            web.stop()


def start_chromium(profile_dir):
    """Debian's headless Chromium through its chromedriver, with a profile of its own in `profile_dir`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser(readme_run, tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_window_size(WIDTH, 900)
    yield driver
    driver.quit()


def test_every_command_of_the_readme_runs(readme_run):
    """Install the packages, make the virtualenv, run bin/dyno web, create a superuser: nothing else."""
    commands = readme_run["commands"]
    assert commands[0].startswith("sudo apt-get install nginx pgbouncer ruby postgresql")
    assert "bin/dyno web" in commands and "bin/dyno run python manage.py createsuperuser" in commands
    assert [command for command, *_ in readme_run["ran"]] == commands
    assert all(status in (0, None) for _command, status, _output in readme_run["ran"])
    output = readme_run["web"].output
    assert "running as root: the dyno runs as the unprivileged user" in output
    assert "first start on this database: running the release phase" in output


def test_index_over_plain_http(readme_run, browser):
    url = readme_run["url"]
    browser.get(url)
    assert browser.current_url == url, "redirected away from plain http"
    assert "It works" in browser.page_source
    # The page names the stack that served it: bin/dyno web runs the Procfile's, as on a dyno.
    assert "Served by nginx → gunicorn " in browser.page_source
    assert " → PgBouncer → PostgreSQL." in browser.page_source


def png_size(png):
    """(width, height) from a PNG's IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_admin_login_and_the_staff_pgbouncer_page(readme_run, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = readme_run["url"]
    browser.get(f"{url}pgbouncer/")
    assert browser.current_url.startswith(f"{url}admin/login/"), "the staff page was shown without a login"
    assert "The PgBouncer page is for staff" in browser.page_source, "the login page does not say why it shows"
    browser.find_element(By.NAME, "username").send_keys(ADMIN)
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda driver: "SHOW STATS" in driver.page_source)
    assert browser.current_url == f"{url}pgbouncer/"
    assert "db1" in browser.page_source and "SHOW POOLS" in browser.page_source
    # Fits the window: nothing wider than the viewport, so nothing cut off or scrolled sideways.
    viewport, page = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
    )
    widest = browser.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('table')).map(t => t.getBoundingClientRect().right))"
    )
    screenshot = browser.get_screenshot_as_png()
    (readme_run["project"].parent / "pgbouncer-page.png").write_bytes(screenshot)
    figure("pgbouncer page", f"viewport={viewport} page={page} widest_table_right={widest:.0f} px")
    assert png_size(screenshot)[0] == viewport == WIDTH, png_size(screenshot)
    assert page <= viewport and widest <= viewport, f"the PgBouncer page is {page} px wide, its tables {widest:.0f}"
    assert "Server connections in use" in browser.page_source and '<a href="/">Home</a>' in browser.page_source
    # On a phone too: nothing wider than the screen, and no figure broken over two lines.
    browser.set_window_size(PHONE_WIDTH, 900)
    try:
        browser.refresh()
        viewport, page, broken = browser.execute_script(
            "const lines = td => { const r = document.createRange(); r.selectNodeContents(td);"
            " return new Set(Array.from(r.getClientRects()).map(rect => Math.round(rect.top))).size; };"
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth,"
            " Array.from(document.querySelectorAll('td')).filter(td => lines(td) > 1).map(td => td.textContent)]"
        )
        figure(f"pgbouncer page at {PHONE_WIDTH} px", viewport=viewport, page=page, wrapped=len(broken))
        assert viewport == PHONE_WIDTH and page <= viewport and not broken, (viewport, page, broken)
    finally:
        browser.set_window_size(WIDTH, 900)
    session = browser.get_cookie("sessionid")
    assert session and session["secure"] is False
    browser.get(f"{url}admin/")
    assert "Site administration" in browser.page_source
    assert browser.title == "Site administration | My Heroku App"  # the project's name, not Django's
    assert "Example results" in browser.page_source  # the example app's model is in the admin


def test_the_index_form_posts(readme_run, browser):
    """The task form over plain http: CSRF passes without https, and the page says the task was queued."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = readme_run["url"]
    browser.get(url)
    browser.find_element(By.NAME, "key").send_keys("from-chromium")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    # The click returns once the POST is sent; the redirected page comes after it.
    WebDriverWait(browser, 30).until(lambda driver: "Queued task" in driver.page_source)
    assert browser.current_url == url and "It works" in browser.page_source
    assert "Queued task" in browser.page_source and "for key from-chromium" in browser.page_source
    project = readme_run["project"]
    queued = subprocess.run(
        [str(project / "bin" / "dyno"), "run", "python", "manage.py", "shell", "-c",
         "from django_q.models import OrmQ; print('QUEUED', OrmQ.objects.count())"],
        cwd=project, env={"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "QUEUED 1" in queued.stdout, queued.stdout[-2000:] + queued.stderr[-2000:]


def test_the_dyno_stops_cleanly(readme_run):
    record = readme_run["web"].stop()
    assert record["returncode"] == 0 and not record["leftovers"], record

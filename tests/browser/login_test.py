#!/usr/bin/env python3
"""`make browser-test`: the browser login of `make run`, clicked through in headless Chromium.

Starts the Auth0 emulator, the echo upstream (which serves the sample login site) and Envoy
with the filter as `make run` does (`auth0-stack up`, tools/auth0_stack.py), on free 127.0.0.1
ports, with the tenant's and the website client's `localhost:8080` URLs moved to the chosen
port (`--site-at-listen-port`). The browser
opens http://localhost:PORT/ (`localhost` is a secure context over http, so the gateway's
`Secure` cookies are kept) and checks:

1. "Log in" leads to the tenant's login form; a wrong password stays on the form with its error;
2. the right password lands on /web-login/callback, whose script redeems `{code, state}` at
   /oauth/token: the page shows the /userinfo answer, the `sid` cookie is HttpOnly and Secure,
   and the login cookie (`__Host-auth0-login-…`) is gone;
3. "Log out" comes back to `/` with the `sid` cookie cleared, and ends the tenant session: the
   next "Log in" shows the form again.

Every wait is bounded; everything started here is stopped on the way out, whatever happens.

Usage (from the repository root, with the project .venv's python, where selenium is):
    login_test.py ENVOY_BIN EMULATOR_BIN WASM_PATH
Environment: CHROMIUM (default /usr/bin/chromium), CHROMEDRIVER (default /usr/bin/chromedriver).
"""
import json
import os
import pathlib
import signal
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from auth0_stack import Up  # noqa: E402

RUN_DIR = ROOT / "target" / "browser-test"
WAIT = 15  # seconds, for any one page or element
ALICE = ("alice", "Alice-Passw0rd!")
ALICE_ID = "auth0|0000000000000000000000a1"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--window-size=1024,768"]:
        options.add_argument(arg)
    # The driver is given: Selenium Manager (which would download one) is never asked.
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"),
                      log_output=str(RUN_DIR / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


def login_form(driver, base):
    """From the site's home page, "Log in" to the tenant's form."""
    wait = WebDriverWait(driver, WAIT)
    driver.get(f"{base}/")
    wait.until(ready.element_to_be_clickable((By.ID, "login"))).click()
    wait.until(ready.presence_of_element_located((By.ID, "password")))
    check(driver.title.startswith("Log in"), f"not the login form: {driver.current_url}")


def submit(driver, username, password):
    field = driver.find_element(By.ID, "username")
    field.clear()
    field.send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()


def run(driver, stack):
    base = f"http://localhost:{stack['listen']}"
    wait = WebDriverWait(driver, WAIT)

    # 1. The form, and a wrong password: the form again, with the error on it.
    login_form(driver, base)
    check(driver.current_url.startswith(f"http://127.0.0.1:{stack['auth0']}/authorize?"),
          f"the login is at the tenant: {driver.current_url}")
    submit(driver, ALICE[0], "not-her-password")
    error = wait.until(ready.visibility_of_element_located((By.ID, "error")))
    check(error.text == "Wrong username or password", f"error shown: {error.text!r}")
    check(driver.find_element(By.ID, "username").get_attribute("value") == ALICE[0],
          "the username is kept")
    check(driver.find_element(By.ID, "password").get_attribute("value") == "",
          "the password is not sent back")
    print("ok: wrong password stays on the form with its error")

    # 2. The right password: the callback redeems the code and shows /userinfo.
    submit(driver, *ALICE)
    wait.until(ready.url_to_be(f"{base}/web-login/callback"))  # the script drops the query
    shown = wait.until(ready.visibility_of_element_located((By.ID, "userinfo")))
    info = json.loads(shown.text)
    check(info["sub"] == ALICE_ID and info["email"] == "alice@example.org",
          f"/userinfo shown: {info}")
    check(info.get("groups") == ["admin"], f"app_metadata groups: {info}")
    print("ok: callback posted {code, state}; /userinfo shown:", info["sub"], info["email"])
    sid = driver.get_cookie("sid")
    check(sid is not None, f"no sid cookie: {driver.get_cookies()}")
    check(sid["httpOnly"] and sid["secure"], f"sid must be HttpOnly and Secure: {sid}")
    check(sid.get("sameSite") == "Lax" and sid["path"] == "/", f"sid attributes: {sid}")
    login_cookies = [c["name"] for c in driver.get_cookies()
                     if c["name"].startswith("__Host-auth0-login-")]
    check(not login_cookies, f"the login cookie is cleared: {login_cookies}")
    print("ok: sid cookie HttpOnly, Secure, SameSite=Lax; login cookie cleared")

    # 3. Log out: back home without the cookie; the tenant session ended too.
    driver.find_element(By.ID, "logout").click()
    wait.until(ready.url_to_be(f"{base}/"))
    wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "Not logged in."))
    check(driver.get_cookie("sid") is None, f"sid still set: {driver.get_cookie('sid')}")
    print("ok: logout came back to / and cleared the sid cookie")
    login_form(driver, base)
    print("ok: the next login asks for the password again")


def main():
    envoy_bin, emulator_bin, wasm = sys.argv[1:4]
    # Selenium Manager must not try to download anything.
    os.environ["SE_OFFLINE"] = "true"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    stack = None
    driver = None
    try:
        stack = Up("--dir", RUN_DIR, "--envoy", envoy_bin, "--emulator", emulator_bin,
                   "--wasm", wasm, "--site-at-listen-port")
        driver = chromium()
        run(driver, stack)
    except Exception:
        if driver is not None:
            (RUN_DIR / "failure.html").write_text(driver.page_source)
            print(f"browser at {driver.current_url}; page in {RUN_DIR}/failure.html",
                  file=sys.stderr)
        print(f"logs in {RUN_DIR}", file=sys.stderr)
        raise
    finally:
        if driver is not None:
            driver.quit()
        if stack is not None:
            stack.stop()
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Drives one headless Chromium over --remote-debugging-pipe (the DevTools protocol, no node, no network
port) through the status page of a running fleetprobe, and checks what the page's JavaScript built.

    status_page_driver.py CHROMIUM PROFILE_DIR BASE_URL HOSTILE_URL FILE_URL SCREENSHOT PHONE_SHOT FLEETPROBE_PID

Called by test-status-page.sh inside its network namespace; the expected fleet is the one that script
writes. Exit 0 when every check passed, 1 otherwise (each failure printed as `FAIL: ...`)."""

import base64
import json
import re
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

failures = []


def check(condition, message):
    if condition:
        print("ok: " + message)
    else:
        print("FAIL: " + message)
        failures.append(message)
    return condition


class Browser:
    """One Chromium process, commands on fd 3, answers and events on fd 4, each message ended by NUL."""

    def __init__(self, chromium, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Move the pipe ends to high numbers first so that the dup2 to 3 and 4 cannot clobber one another.
            a = os.dup(to_chrome_r) if to_chrome_r < 10 else to_chrome_r
            b = os.dup(from_chrome_w) if from_chrome_w < 10 else from_chrome_w
            a, b = os.dup2(a, 20, inheritable=False), os.dup2(b, 21, inheritable=False)
            os.dup2(a, 3)
            os.dup2(b, 4)
            try:  # Chromium dies with this driver, whatever kills it (best effort: Linux only)
                import ctypes
                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            except Exception:
                pass

        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile,
                "--remote-debugging-pipe", "about:blank"]
        self._log = open(os.path.join(profile, "chromium.log"), "wb")
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                        # close_fds would close 3 and 4 after preexec_fn; every other fd
                                        # of this process is close-on-exec.
                                        preexec_fn=child_fds, close_fds=False,
                                        env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS="disabled:"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session = None
        self.credentials = None
        self.auth_challenges = 0

    def send(self, method, params=None, session=True, timeout=20):
        self._next_id += 1
        my_id = self._next_id
        message = {"id": my_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if "method" in answer:
                self._on_event(answer)
                continue
            if answer.get("id") == my_id:
                if "error" in answer:
                    raise RuntimeError(method + ": " + json.dumps(answer["error"]))
                return answer.get("result", {})

    def _post(self, method, params, session_id):
        """Sends a command without waiting for its answer (from an event handler)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session_id:
            message["sessionId"] = session_id
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")

    def _on_event(self, event):
        params = event.get("params", {})
        if event["method"] == "Fetch.requestPaused":
            self._post("Fetch.continueRequest", {"requestId": params["requestId"]}, event.get("sessionId"))
        elif event["method"] == "Fetch.authRequired":
            # The browser's own basic-auth flow: the server's 401 challenge, answered as a user would.
            self.auth_challenges += 1
            user, password = self.credentials
            self._post("Fetch.continueWithAuth",
                       {"requestId": params["requestId"],
                        "authChallengeResponse": {"response": "ProvideCredentials", "username": user,
                                                  "password": password}},
                       event.get("sessionId"))

    def enable_auth(self, credentials):
        """Answers basic-auth challenges with `credentials` (user, password) from now on."""
        self.credentials = credentials
        self.send("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})

    def _read(self, deadline):
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its pipe (see chromium.log in the profile)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError("JavaScript error in " + expression + ": " + json.dumps(result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, timeout=10.0):
        """Polls `expression` until it is truthy; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def navigate(self, url):
        self.evaluate("window.driverLeft = true")
        self.send("Page.navigate", {"url": url})
        # A new document (without the mark of the old one) whose first poll has been rendered.
        return self.wait_for("!window.driverLeft && document.body && document.body.dataset.gateway !== undefined "
                             "&& document.body.dataset.gateway !== 'loading'", 15)

    def screenshot(self, path, width, height, mobile, scale=1):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


ROWS = """JSON.stringify(Array.from(document.querySelectorAll('#rows tr')).map(tr => ({
    device: tr.dataset.device, cls: tr.dataset.class, state: tr.dataset.state, text: tr.innerText})))"""

# The fleet of test-status-page.sh: device -> (class, state, words its row must show).
FLEET = {
    "meter-0001": ("meters_gprs", "up", ["ping", "502/tcp", "ms"]),
    "meter-0002": ("meters_gprs", "up", []),
    "meter-0003": ("meters_gprs", "down", ["timeout"]),
    "meter-0004": ("meters_gprs", "up", []),
    "meter-0005": ("meters_gprs", "partial", ["refused"]),
    "meter-0006": ("meters_gprs", "up", []),
    "meter-0007": ("meters_gprs", "down", ["timeout"]),
    "meter-0008": ("meters_gprs", "up", []),
    "meter-0009": ("meters_gprs", "partial", ["modem up, meter dead", "ping, port 502/tcp answer;",
                                               "modbus never answered (timeout)"]),
    "datalogger-north-01": ("dataloggers", "up", ["5683/udp"]),
    "datalogger-south-01": ("dataloggers", "down", ["timeout"]),
    "datalogger-east-01": ("dataloggers", "up", []),
    "datalogger-west-01": ("dataloggers", "partial", ["8080/tcp", "refused"]),
}
ORDER = {"down": 0, "partial": 1, "up": 2}

# The planning list of online windows (issue 18): device, window start (null: none), text, heatmap cells.
WINDOWS = """JSON.stringify(Array.from(document.querySelectorAll('#window-rows tr')).map(tr => ({
    device: tr.dataset.device, start: tr.dataset.windowStart ? Number(tr.dataset.windowStart) : null,
    text: tr.querySelector('td.window').innerText, cells: tr.querySelectorAll('.heat i').length,
    on: tr.querySelectorAll('.heat i.on').length})))"""
SILENT = {"meter-0003", "meter-0007", "datalogger-south-01"}


def check_windows(browser):
    """The planning list: every device, sorted by window start (none last), with its week heatmap. Devices
    online in both cycles so far have a current window (this hour, p = 1); the silent ones (online in one cycle
    of two) none; datalogger-north-01 carries the profile test-status-page.sh seeded: weekdays 08-12 UTC."""
    check(browser.evaluate("document.querySelector('#planning').hidden") is False, "the planning list is shown")
    plan = json.loads(browser.evaluate(WINDOWS))
    check(sorted(r["device"] for r in plan) == sorted(FLEET), "one window row per device: %s" % plan)
    starts = [r["start"] for r in plan]
    known = [x for x in starts if x is not None]
    check(starts[:len(known)] == sorted(known), "sorted by next window, unknown last: %s" % starts)
    for r in plan:
        check(r["cells"] == 168, "%s: a 7 x 24 heatmap: %d cells" % (r["device"], r["cells"]))
        if r["device"] in SILENT:
            check(r["start"] is None and r["text"].startswith("no window known yet"), "%s: no window: %r" % (r["device"], r["text"]))
        elif r["device"] != "datalogger-north-01":
            check(r["text"].startswith("current window: ") and "(p = 1.00)" in r["text"], "%s: %r" % (r["device"], r["text"]))
    north = [r for r in plan if r["device"] == "datalogger-north-01"]
    check(len(north) == 1 and north[0]["on"] == 20, "north: 20 likely hours (weekdays 08-12): %s" % north)
    if north:
        check(re.match(r"(next|current) window: (Mon|Tue|Wed|Thu|Fri) 08:00\u201312:00 \(p = 1\.00\)", north[0]["text"]),
              "north: its seeded window: %r" % north[0]["text"])


def main():
    # timeout(1) sends SIGTERM: leave through the finally below, which closes Chromium.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated (took too long)"))
    chromium, profile, base, hostile_url, file_url, shot, phone_shot, fleetprobe_pid = sys.argv[1:9]
    browser = Browser(chromium, profile)
    try:
        browser.open_page()
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})

        # 1. Every device, down first, with its class, state and reasons; counts per class at the top.
        check(browser.navigate(base + "/"), "the page loaded and rendered its first poll")
        check(browser.evaluate("document.body.dataset.gateway") == "ok", "the gateway is reachable")
        rows = json.loads(browser.evaluate(ROWS))
        check(sorted(r["device"] for r in rows) == sorted(FLEET), "one row per device: %s" % [r["device"] for r in rows])
        states = [ORDER.get(r["state"], 9) for r in rows]
        check(states == sorted(states), "down first, then partial, then up: %s" % [r["state"] for r in rows])
        for r in rows:
            cls, state, words = FLEET.get(r["device"], (None, None, []))
            check(r["cls"] == cls and r["state"] == state,
                  "%s: class %s state %s (expected %s %s)" % (r["device"], r["cls"], r["state"], cls, state))
            for word in words:
                check(word in r["text"], "%s shows %r: %r" % (r["device"], word, r["text"]))
        cards = browser.evaluate("Array.from(document.querySelectorAll('.class-card')).map(c => c.innerText)")
        check(len(cards) == 3, "three summary cards (all, dataloggers, meters_gprs): %r" % cards)
        if len(cards) == 3:
            check("3 down" in cards[0] and "3 partial" in cards[0] and "7 up" in cards[0]
                  and "1 modem up, meter dead" in cards[0], "all: %r" % cards[0])
            check("dataloggers" in cards[1] and "1 down" in cards[1] and "1 partial" in cards[1]
                  and "2 up" in cards[1], "dataloggers: %r" % cards[1])
            check("meters_gprs" in cards[2] and "2 down" in cards[2] and "2 partial" in cards[2]
                  and "5 up" in cards[2] and "1 modem up, meter dead" in cards[2], "meters_gprs: %r" % cards[2])
            check("modem up, meter dead" not in cards[1], "dataloggers: no dead meter: %r" % cards[1])
        # The "modem up, meter dead" device: only meter-0009, its badge, and which check timed out.
        dead = browser.evaluate("Array.from(document.querySelectorAll('#rows tr[data-diagnosis=modem_up_meter_dead]'))"
                                ".map(tr => tr.dataset.device)")
        check(dead == ["meter-0009"], "only meter-0009 is marked modem up, meter dead: %r" % dead)
        marked = browser.evaluate("Array.from(document.querySelectorAll('tr[data-device=meter-0009] li.meter-dead'))"
                                  ".map(li => li.innerText)")
        check(marked is not None and len(marked) == 1 and marked[0].startswith("modbus") and "timeout" in marked[0],
              "its modbus check is the one marked: %r" % marked)
        status = json.loads(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(base + "/status.json", timeout=10).read())
        meters = [c for c in status["configs"] if c["prom_id"] == "meters_gprs"][0]
        m9 = [d for d in meters["devices"] if d["name"] == "meter-0009"][0]
        by_scraper = {c["scraper"]: c for c in m9["checks"]}
        check(m9["diagnosis"] == "modem_up_meter_dead" and m9["state"] == "partial",
              "status.json: meter-0009 diagnosis %r state %r" % (m9["diagnosis"], m9["state"]))
        check(by_scraper["port"]["up"] is True and by_scraper["ping"]["up"] is True
              and by_scraper["modbus"]["up"] is False and by_scraper["modbus"]["reason"] == "timeout",
              "status.json: meter-0009 port and ping up, modbus down with reason timeout: %r" % m9["checks"])
        check(meters["counts"]["modem_up_meter_dead"] == 1, "status.json counts: %r" % meters["counts"])
        others = [d["name"] for c in status["configs"] for d in c["devices"] if d["diagnosis"] is not None]
        check(others == ["meter-0009"], "status.json: no other device has a diagnosis: %r" % others)
        check(browser.evaluate("document.querySelector('#refresh').innerText.startsWith('Updated ')"),
              "the refresh time is shown")
        check_windows(browser)
        browser.screenshot(shot, 1280, 800, False)
        print("screenshot: " + shot)

        # 2. On a phone: no horizontal scrolling, rows as cards.
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        check(browser.wait_for("document.documentElement.scrollWidth <= window.innerWidth"),
              "no horizontal scrolling at 390 px: scrollWidth %s, innerWidth %s" % (
                  browser.evaluate("document.documentElement.scrollWidth"), browser.evaluate("window.innerWidth")))
        check(browser.evaluate("getComputedStyle(document.querySelector('#rows tr')).display") == "grid",
              "rows are cards on a phone")
        browser.screenshot(phone_shot, 390, 844, True, 2)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})

        # 3. The filter from the URL, and back into the URL when it changes.
        check(browser.navigate(base + "/?q=meter-000&class=meters_gprs&problems=1"), "the filtered page loaded")
        rows = json.loads(browser.evaluate(ROWS))
        check([r["device"] for r in rows] == ["meter-0003", "meter-0007", "meter-0005", "meter-0009"],
              "?q=meter-000&class=meters_gprs&problems=1 shows the four problem meters: %s" % [r["device"] for r in rows])
        check(browser.evaluate("document.querySelector('#q').value") == "meter-000", "the search box holds q")
        check(browser.evaluate("document.querySelector('#class').value") == "meters_gprs", "the class box holds class")
        check(browser.evaluate("document.querySelector('#problems').checked") is True, "problems only is ticked")
        check(browser.evaluate("document.querySelector('#shown').innerText") == "4 of 13 devices shown",
              "4 of 13 shown: %r" % browser.evaluate("document.querySelector('#shown').innerText"))
        browser.evaluate("""(() => { const q = document.querySelector('#q'); q.value = 'north';
                           q.dispatchEvent(new Event('input'));
                           const c = document.querySelector('#class'); c.value = '';
                           c.dispatchEvent(new Event('change'));
                           const p = document.querySelector('#problems'); p.checked = false;
                           p.dispatchEvent(new Event('change')); })()""")
        check(browser.evaluate("location.search") == "?q=north", "typing updates the URL: %r" % browser.evaluate("location.search"))
        rows = json.loads(browser.evaluate(ROWS))
        check([r["device"] for r in rows] == ["datalogger-north-01"], "q=north: %s" % [r["device"] for r in rows])
        check(browser.navigate(base + "/?q=M%C3%A9ter%20%3Cx%3E&class=nope"), "a filter matching nothing")
        check(browser.evaluate("document.querySelectorAll('#rows tr').length") == 0, "no rows")
        check(browser.evaluate("document.querySelector('#empty').innerText") == "No device matches the filter.",
              "says that nothing matches")
        check(browser.evaluate("document.querySelector('#q').value") == "M\u00e9ter <x>", "the query is decoded")

        # 4. Hostile device names are text, never markup. That fleetprobe also wants basic auth
        #    (--web.config.file): the browser answers the challenge and the page's own polls of /status.json
        #    carry the credentials.
        credentials = os.environ.get("STATUS_PAGE_AUTH")
        if credentials:
            browser.enable_auth(tuple(credentials.split(":", 1)))
        check(browser.navigate(hostile_url + "/"), "the page of the hostile fleet loaded")
        if credentials:
            check(browser.auth_challenges >= 1, "the browser was asked for credentials (basic auth)")
            check(browser.wait_for("document.body.dataset.gateway === 'ok'"),
                  "the page polls /status.json behind basic auth")
            browser.send("Fetch.disable")
        check(browser.evaluate("document.querySelectorAll('#window-rows img, #window-rows script, #window-rows b').length") == 0,
              "no markup from data in the planning list")
        check(browser.evaluate("document.querySelectorAll('#rows img, #rows script, #rows b, #summary b').length") == 0,
              "no element made from data")
        check(browser.evaluate("window.pwned === undefined"), "no script from data ran")
        names = browser.evaluate("Array.from(document.querySelectorAll('#rows .device')).map(e => e.textContent)")
        check(names is not None and '<img src=x onerror="window.pwned=1">' in names
              and "</td></tr><b>bold</b>" in names and "Z\u00e4hler \"Keller\" & 'Ost' \u2028 \U0001F680" in names,
              "the names are shown as written: %r" % names)
        classes = browser.evaluate("Array.from(document.querySelectorAll('.class-card .name')).map(e => e.textContent)")
        check(classes is not None and "<i>lab</i>" in classes, "the class name is text: %r" % classes)

        # 5. The gateway goes away: the page says so and keeps the last data.
        check(browser.navigate(base + "/"), "the page loaded again")
        os.kill(int(fleetprobe_pid), signal.SIGTERM)
        check(browser.wait_for("document.body.dataset.gateway === 'unreachable'", 15),
              "the page notices the unreachable gateway")
        banner = browser.evaluate("document.querySelector('#banner').innerText")
        check(banner.startswith("Gateway unreachable since ") and "showing the data of" in banner,
              "the banner says so: %r" % banner)
        check(browser.evaluate("document.querySelectorAll('#rows tr').length") == 13, "the last rows stay")

        # 6. Without any answer at all (the page opened from a file): unreachable, no rows.
        check(browser.navigate(file_url), "the page from a file loaded")
        check(browser.evaluate("document.body.dataset.gateway") == "unreachable", "unreachable without data")
        check(browser.evaluate("document.querySelector('#refresh').innerText") == "No data", "no data")
    finally:
        browser.close()
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

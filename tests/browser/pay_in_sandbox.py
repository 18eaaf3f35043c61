#!/usr/bin/env python3
"""Opens a payment link in a real headless Chromium and presses the sandbox checkout's "pay",
over the Chrome DevTools Protocol. Prints what the browser saw, one line each:
    checkout: <the URL the link redirected to>
    button: <the pay button's text>
    after: <the text of the page the payment led to>
Usage: pay_in_sandbox.py <chromium> <payment link>
"""

import asyncio
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


async def main(chromium, link):
    profile = tempfile.mkdtemp(prefix="recobro-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = pathlib.Path(profile, "DevToolsActivePort")
        for _ in range(300):
            if active.exists() and active.read_text().strip():
                break
            time.sleep(0.1)
        port = active.read_text().split()[0]
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(p for p in pages if p["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 1_000_000))

            async def call(method, **params):
                my_id = next(ids)
                await ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("id") == my_id:
                        if "error" in message:
                            raise RuntimeError(f"{method}: {message['error']}")
                        return message.get("result", {})

            async def loaded():
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("method") == "Page.loadEventFired":
                        return

            async def evaluate(expression):
                result = await call("Runtime.evaluate", expression=expression, returnByValue=True)
                return result["result"].get("value")

            await call("Page.enable")
            await call("Page.navigate", url=link)
            await asyncio.wait_for(loaded(), 30)
            print("checkout:", await evaluate("location.href"))
            print("button:", await evaluate("document.getElementById('pay').innerText"))
            await evaluate("document.getElementById('pay').click()")
            await asyncio.wait_for(loaded(), 30)
            print("after:", (await evaluate("document.body.innerText")).replace("\n", " "))
    finally:
        browser.terminate()
        browser.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

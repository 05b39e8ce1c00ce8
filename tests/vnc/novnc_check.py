#!/usr/bin/env python3
"""noVNC in headless Chromium shows a running VM's screen, judged against
the VM's own screenshot (termvisor vm screenshot) of the same moment.

    novnc_check.py --vnc PORT --mode websockify|direct --shot CMD... \\
        --work DIR

The guest has drawn a known picture (see slow-vnc-novnc.sh: four bands,
each with a left and a right colour).  This serves /usr/share/novnc on a
loopback port, opens vnc_lite.html through chromedriver (the W3C
WebDriver protocol over HTTP, so no Selenium is needed) and lets noVNC
connect either through websockify (Debian's way) or straight to the VM's
VNC port (libvncserver answers WebSocket handshakes itself).  Once the
canvas shows the picture, it runs the screenshot command, takes the
browser's screenshot, cuts the canvas out of it and compares the two
pixel by pixel.  Everything listens on 127.0.0.1 only.

Exit status 0 when they match, 1 when not, 77 when a tool is missing.
"""
import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

# The guest's picture (the script's draw command): band i of four
# horizontal bands is LEFT[i] on its left half and RIGHT[i] on its right.
LEFT = [(255, 1, 1), (1, 255, 1), (1, 1, 255), (64, 64, 64)]
RIGHT = [(1, 1, 128), (255, 255, 1), (128, 1, 255), (200, 200, 200)]

NOVNC = '/usr/share/novnc'

# The screenshot decoder the display tests share.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'e2e'))
from png import load as png_load  # noqa: E402


def free_port():
    # Only for the helpers that want a port number on their command
    # line (chromedriver, websockify); they fail loudly if it was taken
    # meanwhile, and the caller tries again.
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, secs):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def start_helper(argv_of_port, log):
    """Start argv_of_port(port) on a free port; (proc, port)."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(argv_of_port(port), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        if wait_port(port, proc, 20):
            return proc, port
        proc.kill()
        proc.wait()
    raise RuntimeError('%s did not start (see its log)' % argv_of_port(0)[0])


def serve_novnc():
    """noVNC's files over HTTP on 127.0.0.1 (a port of its own)."""
    handler = functools.partial(QuietHandler, directory=NOVNC)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class WebDriver:
    """The few W3C WebDriver calls this needs."""

    def __init__(self, port, args):
        self.base = 'http://127.0.0.1:%d' % port
        binary = '/usr/lib/chromium/chromium'
        opts = {'args': args}
        if os.access(binary, os.X_OK):
            opts['binary'] = binary
        r = self.call('POST', '/session', {'capabilities': {'alwaysMatch': {
            'browserName': 'chrome', 'goog:chromeOptions': opts}}})
        self.sid = r['sessionId']

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method, headers={
                                         'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp)['value']
        except urllib.error.HTTPError as e:
            raise RuntimeError('webdriver %s %s: %s' % (
                method, path, e.read().decode(errors='replace')[:500]))

    def go(self, url):
        self.call('POST', '/session/%s/url' % self.sid, {'url': url})

    def js(self, script):
        return self.call('POST', '/session/%s/execute/sync' % self.sid,
                         {'script': script, 'args': []})

    def screenshot(self, path):
        png = self.call('GET', '/session/%s/screenshot' % self.sid)
        with open(path, 'wb') as f:
            f.write(base64.b64decode(png))

    def quit(self):
        try:
            self.call('DELETE', '/session/%s' % self.sid)
        except (OSError, RuntimeError):
            pass


# The canvas noVNC draws on: its place in the page, its size, the status
# line, and the pixels at the centre of each of the eight rectangles.
PROBE = r'''
const c = document.querySelector('#screen canvas');
const st = document.getElementById('status').textContent;
if (!c || c.width < 8 || c.height < 8) return {status: st};
const r = c.getBoundingClientRect(), g = c.getContext('2d');
const px = [];
for (let i = 0; i < 4; i++)
  for (const fx of [0.25, 0.75]) {
    const d = g.getImageData(Math.floor(c.width * fx),
        Math.floor(c.height * (2 * i + 1) / 8), 1, 1).data;
    px.push([d[0], d[1], d[2]]);
  }
return {status: st, x: r.left, y: r.top, w: c.width, h: c.height,
        cw: r.width, ch: r.height, px: px,
        dpr: window.devicePixelRatio};
'''


def expected_px():
    out = []
    for i in range(4):
        out += [list(LEFT[i]), list(RIGHT[i])]
    return out


def wait_picture(wd, secs):
    """The probe once noVNC's canvas shows the picture, or the last one."""
    end, p = time.time() + secs, {}
    while time.time() < end:
        p = wd.js(PROBE) or {}
        if p.get('px') == expected_px():
            return p, True
        time.sleep(0.5)
    return p, False


def picture_ok(w, h, rows):
    """Does the VM's own screenshot show the picture?  A message or None."""
    for i in range(4):
        y = h * (2 * i + 1) // 8
        for fx, want in ((0.25, LEFT[i]), (0.75, RIGHT[i])):
            x = int(w * fx)
            got = tuple(rows[y][3 * x:3 * x + 3])
            if got != want:
                return 'vm screenshot: (%d,%d) is %s, not %s' % (x, y, got, want)
    return None


def compare(ref, page, probe):
    """Compare the VM's screenshot with the canvas cut out of the page's.
    A message or None."""
    (w, h, rrows), (pw, ph, prows) = ref, page
    x0, y0 = round(probe['x']), round(probe['y'])
    if (probe['w'], probe['h']) != (w, h):
        return 'canvas %dx%d, the VM shows %dx%d' % (probe['w'], probe['h'], w, h)
    if (round(probe['cw']), round(probe['ch'])) != (w, h) or probe['dpr'] != 1:
        return 'canvas drawn at %sx%s (scale %s), not 1:1' % (
            probe['cw'], probe['ch'], probe['dpr'])
    if x0 < 0 or y0 < 0 or x0 + w > pw or y0 + h > ph:
        return 'canvas at %d,%d is not all in the %dx%d page' % (x0, y0, pw, ph)
    bad, first = 0, None
    for y in range(h):
        a = rrows[y]
        b = prows[y0 + y][3 * x0:3 * (x0 + w)]
        if a == b:
            continue
        for x in range(w):
            if a[3 * x:3 * x + 3] != b[3 * x:3 * x + 3]:
                bad += 1
                if first is None:
                    first = (x, y, tuple(a[3 * x:3 * x + 3]),
                             tuple(b[3 * x:3 * x + 3]))
    if bad:
        return '%d of %d pixels differ; first at (%d,%d): VM %s, browser %s' % (
            (bad, w * h) + first)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vnc', type=int, required=True)
    ap.add_argument('--mode', choices=('websockify', 'direct'), required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--shot', nargs=argparse.REMAINDER, required=True)
    o = ap.parse_args()
    for tool in ('chromedriver', 'websockify'):
        if shutil.which(tool) is None:
            print('%s is missing' % tool)
            return 77
    if not os.path.exists(os.path.join(NOVNC, 'vnc_lite.html')):
        print('noVNC is missing (%s)' % NOVNC)
        return 77

    log = open(os.path.join(o.work, 'helpers-%s.log' % o.mode), 'ab')
    procs, wd = [], None
    srv = serve_novnc()
    try:
        ws_port = o.vnc
        if o.mode == 'websockify':
            p, ws_port = start_helper(lambda port: [
                'websockify', '127.0.0.1:%d' % port,
                '127.0.0.1:%d' % o.vnc], log)
            procs.append(p)
        p, cd_port = start_helper(lambda port: [
            'chromedriver', '--port=%d' % port,
            '--allowed-ips=127.0.0.1'], log)
        procs.append(p)
        wd = WebDriver(cd_port, [
            '--headless=new', '--no-sandbox', '--disable-gpu',
            '--disable-dev-shm-usage', '--window-size=1280,1000',
            '--force-device-scale-factor=1', '--force-color-profile=srgb',
            '--user-data-dir=%s' % os.path.join(o.work, 'chromium-' + o.mode),
            '--no-first-run', '--no-default-browser-check',
            '--disable-extensions', '--disable-background-networking',
            '--disable-component-update', '--disable-sync'])
        wd.go('http://127.0.0.1:%d/vnc_lite.html?host=127.0.0.1&port=%d'
              % (srv.server_address[1], ws_port))
        probe, seen = wait_picture(wd, 90)
        if not seen:
            print('noVNC never showed the picture: status %r, probe %s'
                  % (probe.get('status'), probe))
            return 1
        ref_png = os.path.join(o.work, 'vm-%s.png' % o.mode)
        page_png = os.path.join(o.work, 'browser-%s.png' % o.mode)
        subprocess.run(o.shot + [ref_png], check=True,
                       stdout=subprocess.DEVNULL)
        wd.screenshot(page_png)
        ref, page = png_load(ref_png), png_load(page_png)
        msg = picture_ok(*ref) or compare(ref, page, probe)
        if msg:
            print('%s: %s' % (o.mode, msg))
            return 1
        print('%s: noVNC (%s) shows the %dx%d screen exactly as vm screenshot'
              % (o.mode, probe['status'], ref[0], ref[1]))
        return 0
    finally:
        if wd is not None:
            wd.quit()
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.shutdown()


if __name__ == '__main__':
    sys.exit(main())

"""Load an HTML report in a real headless Chromium and check it (no network).

:func:`check_page` copies the page's folder to a temporary one, injects two inline
scripts into the copy (the first, at the top of <head>, records console errors,
uncaught exceptions and failed resource loads; the second, on ``load``, writes
``{"images": [[src, naturalWidth], ...], "errors": [...], "title": ...}`` as JSON into
a ``<pre id="hpcneuro-browser-check">``), runs ``chromium --headless --dump-dom`` on it
and parses the DOM it prints. The report itself is never modified.

Chromium runs with an empty profile (``--user-data-dir`` a fresh temporary folder),
no sandbox (root in containers), no GPU, no background networking, component updates,
sync or QUIC; pages are local ``file://`` URLs, and the check fails if the page asks
for anything that is not a local file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import require

CHECK_ID = "hpcneuro-browser-check"

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]

_HEAD_SCRIPT = """<script>
window.__hpcneuroErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  __hpcneuroErrors.push(t && t !== window && (t.src || t.href)
    ? 'failed to load ' + (t.src || t.href) : 'uncaught: ' + e.message);
}, true);
window.addEventListener('unhandledrejection', function (e) {
  __hpcneuroErrors.push('unhandled rejection: ' + e.reason);
});
(function () {
  var original = console.error;
  console.error = function () {
    __hpcneuroErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
</script>"""

_BODY_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (i) {
    return [i.getAttribute('src'), i.naturalWidth, i.naturalHeight];
  });
  var external = Array.prototype.filter.call(
    document.querySelectorAll('[src],[href]'), function (n) {
      var u = n.src || n.href || '';
      return u && !/^(file:|data:|about:|#|javascript:)/.test(u);
    }).map(function (n) { return n.src || n.href; });
  var pre = document.createElement('pre');
  pre.id = '%s';
  pre.textContent = JSON.stringify({images: images, errors: __hpcneuroErrors,
                                    external: external, title: document.title});
  document.body.appendChild(pre);
});
</script>""" % CHECK_ID


def chromium() -> str:
    """The Chromium executable; skips the test without one (fails on CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require("Chromium", found is not None,
            "scripts/install.sh installs Debian's chromium package (apt-get install chromium)")
    return found


def check_page(page: Path, timeout: float = 120) -> dict:
    """Load ``page`` in headless Chromium; returns the parsed check record.

    Raises AssertionError if Chromium fails or the check never ran (the page did not
    reach its load event).
    """
    exe = chromium()
    page = Path(page).resolve()
    with tempfile.TemporaryDirectory(prefix="hpcneuro-browser-") as tmp:
        copy = Path(tmp) / "page"
        shutil.copytree(page.parent, copy)
        target = copy / page.name
        text = target.read_text(encoding="utf-8")
        text = re.sub(r"<head[^>]*>", lambda m: m.group(0) + _HEAD_SCRIPT, text, count=1)
        text = (text.replace("</body>", _BODY_SCRIPT + "</body>", 1) if "</body>" in text
                else text + _BODY_SCRIPT)
        target.write_text(text, encoding="utf-8")
        profile = Path(tmp) / "profile"
        profile.mkdir()
        proc = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               target.as_uri()], capture_output=True, text=True,
                              timeout=timeout)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    m = re.search(rf'<pre id="{CHECK_ID}">(.*?)</pre>', proc.stdout, re.S)
    assert m, ("the page never reached its load event (no check record in the DOM); "
               f"chromium stderr: {proc.stderr[-2000:]}")
    import html

    return json.loads(html.unescape(m.group(1)))


def assert_page_ok(page: Path) -> dict:
    """The page loads, every image renders (naturalWidth > 0), no console errors, no
    external resources. Returns the check record."""
    record = check_page(page)
    assert record["images"], f"{page}: no images"
    broken = [src for src, width, _ in record["images"] if not width]
    assert not broken, f"{page}: images that did not render: {broken}"
    assert not record["errors"], f"{page}: console errors: {record['errors']}"
    assert not record["external"], f"{page}: external resources: {record['external']}"
    return record

"""HTML docs of contracts/asyncapi.yaml with the AsyncAPI generator (npm `@asyncapi/cli` + `@asyncapi/html-template`).

`make generate` writes them to generated/asyncapi-html/ (tools/generate.py calls `render`); the web app serves
them at /api/events/, beside Swagger UI at /api/ui/.

The two npm packages are pinned in tools/asyncapi/package.json with a committed lock file (no download
addresses in it: tools/asyncapi/.npmrc). They are installed once, with `npm ci`, into .stack/asyncapi/ (git
ignores .stack/), and again only when the lock file changes; the install is serialized by a file lock, so a
`make generate` and a test running at the same time share it. About 550 MB and a few minutes on a fresh machine;
seconds afterwards. Puppeteer (a dependency of the CLI's PDF output, which we do not use) is told not to
download a browser, and the CLI's anonymous usage metrics are off. The output depends only on the contract and
the pinned versions (the test regenerates it and compares byte for byte).

  python -m tools.asyncapi_docs [--out DIR]    # render alone
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.contracts_check import CONTRACTS_DIR, REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "tools" / "asyncapi"
INSTALL_DIR = Path(os.environ.get("ASYNCAPI_TOOLS_DIR", REPO_ROOT / ".stack" / "asyncapi"))
OUT_NAME = "asyncapi-html"
_FILES = ("package.json", "package-lock.json", ".npmrc")
_ENV = {"PUPPETEER_SKIP_DOWNLOAD": "true", "ASYNCAPI_METRICS": "false", "NO_COLOR": "1", "CI": "true"}


class DocsError(RuntimeError):
    pass


def _installed() -> bool:
    return (INSTALL_DIR / "node_modules" / ".bin" / "asyncapi").exists() and all(
        (INSTALL_DIR / name).exists() and filecmp.cmp(PACKAGE_DIR / name, INSTALL_DIR / name, shallow=False)
        for name in _FILES
    )


def ensure_installed() -> Path:
    """The pinned CLI and template in INSTALL_DIR (npm ci when missing or when the lock file changed)."""
    if shutil.which("npm") is None:
        raise DocsError("npm is not installed: the AsyncAPI HTML docs need Node.js and npm (Debian: nodejs npm)")
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            print("==> installing @asyncapi/cli and @asyncapi/html-template (pinned) into "
                  f"{INSTALL_DIR} (first run: a few minutes)", file=sys.stderr)
            for name in _FILES:
                shutil.copyfile(PACKAGE_DIR / name, INSTALL_DIR / name)
            log = INSTALL_DIR / "npm-ci.log"
            with log.open("w") as out:
                done = subprocess.run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"], cwd=INSTALL_DIR,
                                      env={**os.environ, **_ENV}, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                (INSTALL_DIR / "package-lock.json").unlink(missing_ok=True)  # retried next time
                raise DocsError(f"npm ci failed ({done.returncode}); see {log}:\n{log.read_text()[-2000:]}")
    return INSTALL_DIR


def render(out: Path, contract: Path = CONTRACTS_DIR / "asyncapi.yaml") -> None:
    """Write the HTML docs of `contract` into `out` (replaced)."""
    tools = ensure_installed()
    if out.exists():
        shutil.rmtree(out)
    done = subprocess.run(
        [str(tools / "node_modules" / ".bin" / "asyncapi"), "generate", "fromTemplate", str(contract),
         str(tools / "node_modules" / "@asyncapi" / "html-template"), "--output", str(out), "--force-write",
         "--no-interactive"],
        cwd=tools, env={**os.environ, **_ENV}, capture_output=True, text=True,
    )
    if done.returncode != 0 or not (out / "index.html").exists():
        raise DocsError(f"asyncapi generate failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the AsyncAPI HTML docs.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "generated" / OUT_NAME)
    args = parser.parse_args(argv)
    try:
        render(args.out)
    except DocsError as exc:
        print(f"asyncapi-docs: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The systemd units of ``deploy/systemd`` as the tests read them: parsed, and their
ExecStart turned into the command a test starts on this machine."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "deploy" / "systemd"
WEBSERVER = "btc-tracker-webserver.service"
DAEMON = "btc-tracker-daemon.service"
SETTINGS = UNITS / "btc-tracker.env"
# Where the units expect the checkout and its virtualenv (deploy/README.md).
CHECKOUT = "/opt/btc-tracker"
VENV_BIN = f"{CHECKOUT}/.venv/bin"


def read_unit(name: str) -> configparser.ConfigParser:
    """The unit file ``name`` parsed as INI (keys keep their case; a key may repeat, the
    last one wins, as most of systemd's single-valued keys do)."""
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    text = (UNITS / name).read_text()
    parser.read_string(text, source=name)
    return parser


def exec_start(name: str) -> list[str]:
    """The unit's ExecStart as an argument list."""
    return shlex.split(read_unit(name)["Service"]["ExecStart"])


def local_command(name: str, bin_dir: Path, port: int | None = None) -> list[str]:
    """The unit's ExecStart for this machine: the virtualenv's ``bin_dir`` for the unit's,
    this repository for the checkout, and ``port`` for the ``-p`` value when given."""
    args = []
    for arg in exec_start(name):
        if arg.startswith(VENV_BIN + "/"):
            arg = str(bin_dir / arg.removeprefix(VENV_BIN + "/"))
        elif arg.startswith(CHECKOUT + "/"):
            arg = str(ROOT / arg.removeprefix(CHECKOUT + "/"))
        args.append(arg)
    if port is not None:
        args[args.index("-p") + 1] = str(port)
    return args


def settings() -> dict[str, str]:
    """The variables the settings template sets (commented-out lines excluded)."""
    pairs = {}
    for line in SETTINGS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs

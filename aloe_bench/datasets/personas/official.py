"""The original ALOE persona files: from `--data-dir`, or downloaded once at the pinned commit,
verified against their SHA-256 sums, and cached."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from aloe_bench.datasets.personas.loaders import read_strings
from aloe_bench.errors import UserInputError
from aloe_bench.log.filemodes import chmod_as_created
from aloe_bench.paths import cache_root

ALOE_COMMIT = "b1b8285e3a759c8f7d9b84034447c89857f02e98"
ALOE_URL = f"https://raw.githubusercontent.com/ShujinWu-0814/ALOE/{ALOE_COMMIT}/datasets/{{name}}"
SHA256 = {
    "profile_eval.jsonl": "3d58a1d36fb2b6a39069ebd5f65b7ac34894f3fbe36a05ac0eb5779c4fde9652",
    "personality_eval.jsonl": "01251b2537c838cf417fad652c692ede14182875b834f821bbc7e8b74dd53cc6",
    "profile.jsonl": "da50fe0d650f8ec39c21fd425fdb3f6a63f6cf0153ddf0cfede597b83f533918",
    "personality.jsonl": "6b62c41a029a60c27a51113869cb69060e061078d9c20ab580de88ca70e38b07",
}
EVAL_PERSONALITIES_USED = 5  # the benchmark uses the first 5 of the 7 evaluation personalities
EXPECTED_COUNTS = {
    "profile_eval.jsonl": 20,
    "personality_eval.jsonl": 7,
    "profile.jsonl": 331,
    "personality.jsonl": 71,
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download(name: str, target: Path) -> None:
    url = ALOE_URL.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            data = resp.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise UserInputError(
            f"could not download the ALOE persona file {name} ({getattr(exc, 'reason', exc)}); "
            "offline, pass --data-dir DIR with the original files (datasets/ of github.com/ShujinWu-0814/ALOE)"
        ) from None
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise UserInputError(f"downloaded {name} does not match its pinned SHA-256; refusing to use it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.")
    chmod_as_created(tmp)  # a shared cache stays readable as the umask allows
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, target)


def official_file(name: str, data_dir: str | Path | None) -> Path:
    """Path to a verified original file."""
    if data_dir is not None:
        path = Path(data_dir).expanduser() / name
        if not path.is_file():
            raise UserInputError(
                f"--data-dir {data_dir} has no {name}; point it at the folder holding the ALOE files"
            )
        if _sha256(path) != SHA256[name]:
            raise UserInputError(
                f"{path} differs from the official ALOE file (SHA-256 mismatch); for your own personas, "
                "pass --personas PATH.jsonl instead"
            )
        return path
    path = cache_root() / "data" / f"aloe-{ALOE_COMMIT[:7]}" / name
    if not path.is_file() or _sha256(path) != SHA256[name]:
        _download(name, path)
    return path


def load_official_eval(data_dir: str | Path | None) -> tuple[list[str], list[str], str]:
    profiles_path = official_file("profile_eval.jsonl", data_dir)
    personalities_path = official_file("personality_eval.jsonl", data_dir)
    profiles = read_strings(profiles_path)
    personalities = read_strings(personalities_path)[:EVAL_PERSONALITIES_USED]
    source = str(Path(data_dir).expanduser().resolve()) if data_dir else ALOE_URL.format(name="")
    return profiles, personalities, source


def load_official_pool(data_dir: str | Path | None) -> tuple[list[str], list[str]]:
    """The training pool: 331 profiles and 71 personalities."""
    return (
        read_strings(official_file("profile.jsonl", data_dir)),
        read_strings(official_file("personality.jsonl", data_dir)),
    )

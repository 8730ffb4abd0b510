"""The type check (``make lint``) catches a wrong call to a service made through the
worker's database threads (whatsapp.dbthreads keeps its callers' parameter types)."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip(
    "mypy.api", reason="mypy is not installed (it comes with requirements-dev.txt)"
)

ROOT = Path(__file__).resolve().parent.parent

CALLER = """\
import uuid

from whatsapp import services
from whatsapp.dbthreads import Database


async def release(db: Database, session_id: int, token: uuid.UUID) -> None:
    await db(services.session_worker_stopped, {args})
    await Database.once(services.session_worker_stopped, {args})
"""

CALLS = {
    "caller_ok": "session_id=session_id, token=token",
    "caller_bad_keyword": "session_id=session_id, lease=token",
    "caller_bad_type": "session_id=str(session_id), token=token",
}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Type-check one module per call above with the project's configuration (one run);
    each module's error lines."""
    src = tmp_path_factory.mktemp("callers")
    for name, args in CALLS.items():
        (src / f"{name}.py").write_text(CALLER.format(args=args))
    cache = tmp_path_factory.mktemp("mypy-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)  # the configuration's paths, and where the project's packages are
        mp.setenv("MYPYPATH", str(ROOT))
        stdout, stderr, _status = mypy_api.run(
            [
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                str(cache),
                "--no-error-summary",
                "--hide-error-context",
                *(str(src / f"{name}.py") for name in CALLS),
            ]
        )
    assert not stderr, stderr
    report: dict[str, list[str]] = {name: [] for name in CALLS}
    other = []
    for line in stdout.splitlines():
        name = Path(line.split(":", 1)[0]).stem
        if ": error:" not in line:
            continue
        if name in report:
            report[name].append(line)
        else:
            other.append(line)
    assert not other, "the project itself does not type-check:\n" + "\n".join(other)
    return report


def test_a_correct_call_through_the_database_threads_passes(mypy_report):
    assert mypy_report["caller_ok"] == []


def test_a_wrong_keyword_through_the_database_threads_is_an_error(mypy_report):
    errors = mypy_report["caller_bad_keyword"]
    # Both ways in: the pool (Database.__call__) and the one-off thread (Database.once).
    assert len(errors) == 2, errors
    assert all('Unexpected keyword argument "lease"' in e for e in errors), errors


def test_a_wrong_type_through_the_database_threads_is_an_error(mypy_report):
    errors = mypy_report["caller_bad_type"]
    assert len(errors) == 2, errors
    assert all('"str"; expected "int"' in e and "[arg-type]" in e for e in errors), errors

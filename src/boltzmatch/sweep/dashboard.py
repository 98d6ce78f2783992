"""``boltzmatch sweep dashboard DIR``: Optuna's dashboard (PyPI ``optuna-dashboard``) on a sweep's storage.

The dashboard reads the same database the agents write (the folder's ``study.db``, or the PostgreSQL
URL recorded in ``study.json``), so it shows trials as they start, report and finish: a live view of a
running sweep, from the machine that runs it or any machine that reaches its database.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BoltzmatchError
from .runner import load_study, study_record


def dashboard_address(out: str | Path, storage: str | None, host: str, port: int) -> tuple[str, str]:
    """The storage URL of the sweep in ``out`` and the dashboard page of its study at ``host:port``."""
    out = Path(out)
    study, _ = load_study(out, storage)  # a folder that is not a sweep, or a storage without it: one line
    url = study_record(out, storage)["storage"] or f"sqlite:///{(out / 'study.db').resolve()}"
    return url, f"http://{host}:{port}/dashboard/studies/{study._study_id}"


def serve_dashboard(out: str | Path, *, storage: str | None = None, host: str = "127.0.0.1", port: int = 8080,
                    announce=print) -> None:
    """Serve the dashboard of the sweep in ``out`` until Ctrl-C (``announce`` gets the address first)."""
    try:
        import optuna_dashboard
    except ImportError:
        raise BoltzmatchError("the dashboard needs optuna-dashboard: pip install 'boltzmatch[sweep]'") from None
    url, page = dashboard_address(out, storage, host, port)
    announce(f"Optuna dashboard of {out} at {page} (Ctrl-C stops it)")
    try:
        optuna_dashboard.run_server(url, host=host, port=port)
    except OSError as error:  # the port is taken, the host is not this machine's
        raise BoltzmatchError(f"--port {port}: cannot serve on {host}:{port} ({error.strerror or error})") from None

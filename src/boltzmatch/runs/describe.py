"""What a run directory holds, for ``boltzmatch info RUN_DIR``: its model, how it was trained, where it came from
(its lineage of parents) and what fixed its energy zero, beside the summary its training wrote."""

from __future__ import annotations

from pathlib import Path

from . import run_dir as rd

#: model-config keys shown as the model's kind and size, not as its hyperparameters
_MODEL_SHOWN_APART = ("name", "elements", "dtype", "file")


def lineage(run_dir: str | Path, limit: int = 50) -> list[str]:
    """``run_dir`` and its parents, newest first, as each config names them (``parent``). A parent is looked
    for as written (relative to where the fine-tune ran: here, or beside its child); the chain stops at one not
    found, listed as written."""
    chain = [str(run_dir)]
    current = Path(run_dir)
    while len(chain) < limit:
        try:
            parent = rd.read_config(current).get("parent")
        except Exception:  # noqa: BLE001 (a parent moved away, or a model file: the chain ends there)
            break
        if not parent:
            break
        chain.append(str(parent))
        found = [p for p in (Path(parent), current.parent / parent) if p.exists()]
        if not found:
            break
        current = found[0]
    return chain


def energy_zero_text(config: dict) -> str:
    """Where the model's energy zero comes from, in words: none, the training energies (all compositions, or
    only some with the rest fixed by a reference), or a model file's own."""
    normalization = config.get("normalization") or {}
    if config.get("energy_zero") is False:
        return "none (trained without energies: energies carry an arbitrary offset)"
    if config.get("model", {}).get("file"):
        return "the model file's own (its E0s)"
    fixed = normalization.get("compositions")
    if normalization.get("reference_energies"):
        source = normalization.get("reference_source", "given values")
        return f"fitted for {', '.join(fixed)}; beyond them {source}" if fixed else "fitted (every element)"
    return f"fitted only for {', '.join(fixed)}" if fixed else "fitted (every element)"


def describe_run(run_dir: str | Path) -> dict:
    """A run directory (or a MACE/SchNetPack/NequIP model file) described: ``kind``, ``model`` (its config),
    ``n_parameters`` (None where no weights are saved yet, or not an energy model), ``training`` (its settings,
    or {}), ``lineage`` (:func:`lineage`), ``energy_zero`` (:func:`energy_zero_text`; energy models),
    ``epochs_done`` (rows of metrics.csv) and ``summary`` (summary.txt as written, or None)."""
    run_dir = Path(run_dir)
    config = rd.read_config(run_dir)
    kind = {"model": "model file", None: "energy model"}.get(config.get("kind"), config.get("kind"))
    description = {"run_dir": str(run_dir), "kind": kind, "model": config.get("model") or {},
                   "training": config.get("training") or {}, "lineage": lineage(run_dir), "n_parameters": None,
                   "epochs_done": len(rd.read_metrics(run_dir)) if (run_dir / rd.METRICS).is_file() else 0,
                   "summary": (run_dir / rd.SUMMARY).read_text() if (run_dir / rd.SUMMARY).is_file() else None}
    if kind in ("energy model", "model file"):
        description["energy_zero"] = energy_zero_text(config)
        if run_dir.is_file() or (run_dir / rd.MODEL).is_file():
            description["n_parameters"] = sum(p.numel() for p in rd.load(run_dir).parameters())
    return description


def format_run_description(description: dict) -> str:
    """The description of :func:`describe_run` as a table, followed by the run's own training summary."""
    from ase.data import chemical_symbols

    from ..utils.table import format_table

    model, training = description["model"], description["training"]
    rows = [["kind", description["kind"]], ["model", model.get("name", "–")]]
    options = {k: v for k, v in model.items() if k not in _MODEL_SHOWN_APART and not isinstance(v, dict | list)}
    if options:
        rows.append(["model options", ", ".join(f"{k}={v}" for k, v in options.items())])
    if model.get("elements"):
        rows.append(["elements", " ".join(chemical_symbols[int(z)] for z in model["elements"])])
    if model.get("dtype"):
        rows.append(["dtype", model["dtype"]])
    if description["n_parameters"] is not None:
        rows.append(["parameters", f"{description['n_parameters']:,}"])
    if model.get("file"):
        rows.append(["model file", model["file"]])
    for key, label in (("data", "trained on"), ("objective", "objective"), ("temperature", "temperature (K)"),
                       ("epochs", "epochs asked"), ("lr", "learning rate")):
        if training.get(key) is not None:
            rows.append([label, training[key]])
    if description["kind"] != "model file":
        rows.append(["epochs done", description["epochs_done"]])
    if len(description["lineage"]) > 1:
        rows.append(["lineage (newest first)", " ← ".join(description["lineage"])])
    if "energy_zero" in description:
        rows.append(["energy zero", description["energy_zero"]])
    text = format_table(rows, title=f"Run {description['run_dir']}")
    if description["summary"]:
        text += "\n\n" + description["summary"].rstrip()
    return text

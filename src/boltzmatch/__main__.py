"""``python -m boltzmatch`` (also what ``torchrun -m boltzmatch`` runs)."""

from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())

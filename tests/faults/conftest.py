"""The fault suite reuses the UCI file-format builders of tests/unit/test_data_load.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

"""Convert uniad_base_track_map.pth — UniAD stage 1, track + map (OpenDriveLab/UniAD release v1.0) — into a checkpoint of this project.

    python tools/model_converters/uniad_to_nexusflow.py ckpts/uniad_base_track_map.pth ckpts/uniad_base_track_map_nexusflow.pth

Key rules, value changes and the 0.17 -> 1.x box-code derivation: projects/nexusflow/models/converters/official.py
and box_code.py; options and outputs: convert_official.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_official import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main('uniad'))

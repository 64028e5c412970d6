"""Convert r101_dcn_fcos3d_pretrain.pth — FCOS3D ResNet-101-DCN pretrain (the BEVFormer release's backbone initialisation) — into a checkpoint of this project.

    python tools/model_converters/fcos3d_to_nexusflow.py ckpts/r101_dcn_fcos3d_pretrain.pth ckpts/r101_dcn_fcos3d_pretrain_nexusflow.pth

Key rules, value changes and the 0.17 -> 1.x box-code derivation: projects/nexusflow/models/converters/official.py
and box_code.py; options and outputs: convert_official.py.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_official import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main('fcos3d'))

"""A small synthetic NYUv2-like set shared by the NYUv2 tests (24 train / 8 val images of 72 x 96)."""
import pytest

SYNTH_SIZE = (72, 96)
SYNTH_COUNTS = dict(num_train=24, num_val=8)


@pytest.fixture(scope='session')
def nyuv2_root(tmp_path_factory):
    """Root of the generated set (``train/``, ``val/``, ``meta.json``), seed 0."""
    from projects.nexusflow.nyuv2.synthetic import generate_synthetic_nyuv2
    root = tmp_path_factory.mktemp('nyuv2-synth')
    generate_synthetic_nyuv2(str(root), img_size=SYNTH_SIZE, seed=0, **SYNTH_COUNTS)
    return root


@pytest.fixture(scope='session')
def nyuv2_meta(nyuv2_root):
    """The generator's ``meta.json`` of ``nyuv2_root`` (``img_shape``, ``num_train``, ``intrinsics``, ...)."""
    import json
    return json.loads((nyuv2_root / 'meta.json').read_text())

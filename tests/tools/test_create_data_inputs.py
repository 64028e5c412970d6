"""tools/create_data.py on bad input, one case per mode: each fails before writing, with one error that names the
option and the value to fix, and leaves the output folder empty."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def create_data():
    spec = importlib.util.spec_from_file_location('create_data_tool', REPO / 'tools' / 'create_data.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_refused(create_data, argv, error, match, out_dir):
    with pytest.raises(error, match=match):
        create_data.main(argv)
    assert not out_dir.exists() or not any(out_dir.iterdir()), f'{out_dir} was written to'


def test_nuscenes_mode_names_the_missing_tables_and_canbus(create_data, synthetic_root, synthetic_infos, tmp_path):
    out = tmp_path / 'infos'
    run_refused(create_data, ['nuscenes', '--root-path', str(tmp_path / 'nowhere'), '--version', 'v1.0-mini',
                              '--out-dir', str(out)],
                FileNotFoundError, r"nuScenes tables not found: expected the folder .*nowhere/v1.0-mini.*--root-path",
                out)
    run_refused(create_data, ['nuscenes', '--root-path', str(synthetic_root), '--version', 'v1.0-synth',
                              '--out-dir', str(out), '--canbus', str(tmp_path)],
                FileNotFoundError, r'CAN bus expansion not found: expected the folder .*can_bus.*--canbus', out)
    with pytest.raises(SystemExit):  # argparse: "invalid choice", with the list of versions
        create_data.main(['nuscenes', '--root-path', str(synthetic_root), '--version', 'v2.0',
                          '--out-dir', str(out)])


def test_synthetic_mode_names_the_bad_option(create_data, tmp_path):
    out = tmp_path / 'synth'
    run_refused(create_data, ['synthetic', '--out-dir', str(out), '--img-size', '40', '20'], ValueError,
                r'img_size must be at least', out)
    run_refused(create_data, ['synthetic', '--out-dir', str(out), '--scenes-per-city', '0'], ValueError,
                r'scenes_per_city must be >= 1, got 0', out)
    run_refused(create_data, ['synthetic', '--out-dir', str(out), '--version', 'synth'], ValueError,
                r"version must look like 'v1.0-<name>'", out)


def test_nyuv2_synthetic_mode_names_the_bad_option(create_data, tmp_path):
    out = tmp_path / 'nyu'
    run_refused(create_data, ['nyuv2-synthetic', '--out-dir', str(out), '--img-size', '4', '4'], ValueError,
                r'need img_size >= \(8, 8\).*img_size=\(4, 4\)', out)

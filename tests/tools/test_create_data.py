"""tools/create_data.py never mixes or half-writes a dataset; ``verify`` names every bad file."""
import json
import os
import pickle
import shutil

import pytest

from projects.nexusflow.datasets.verify import DatasetCheckError
from tools.create_data import main as create_data
from tools.safe_output import OutputExistsError, staged_dir

SYNTH = ['synthetic', '--scenes-per-city', '1', '--samples-per-scene', '2', '--img-size', '64', '36']


def _listing(root):
    return {os.path.relpath(os.path.join(d, f), root): os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files}


def test_synthetic_refuses_existing_set_and_overwrite_replaces_it_whole(tmp_path):
    out = tmp_path / 'set'
    create_data(SYNTH + ['--out-dir', str(out), '--with-infos', '--seed', '0'])
    before = _listing(out)
    assert 'nuscenes_infos_temporal_train.pkl' in before
    with pytest.raises(OutputExistsError, match=f'--out-dir {out} already holds data.*--overwrite'):
        create_data(SYNTH + ['--out-dir', str(out), '--seed', '1'])
    assert _listing(out) == before
    # --overwrite without --with-infos: the old pkls must not survive next to the new images
    create_data(SYNTH + ['--out-dir', str(out), '--seed', '1', '--overwrite'])
    after = _listing(out)
    assert not any(name.endswith('.pkl') for name in after)
    assert sorted(os.listdir(tmp_path)) == ['set']  # no temporary or old folder left behind


def test_interrupted_write_leaves_the_old_set(tmp_path):
    out = tmp_path / 'set'
    out.mkdir()
    (out / 'keep.txt').write_text('old')
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(str(out), overwrite=True) as tmp:
            (tmp_path / 'marker').write_text(tmp)
            open(os.path.join(tmp, 'half.jpg'), 'wb').close()
            raise KeyboardInterrupt
    assert sorted(os.listdir(out)) == ['keep.txt']
    assert sorted(os.listdir(tmp_path)) == ['marker', 'set']


def test_nuscenes_infos_refuse_existing_pkls_and_keep_raw_data(tmp_path):
    root = tmp_path / 'root'
    create_data(SYNTH + ['--out-dir', str(root)])
    nus = ['nuscenes', '--root-path', str(root), '--version', 'v1.0-synth', '--out-dir', str(root),
           '--canbus', str(root)]
    create_data(nus + ['--verify'])
    train = root / 'nuscenes_infos_temporal_train.pkl'
    mtime = train.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="already holds \\['nuscenes_infos_temporal_train.pkl', "
                                                "'nuscenes_infos_temporal_val.pkl'\\].*--overwrite"):
        create_data(nus)
    assert train.stat().st_mtime_ns == mtime
    create_data(nus + ['--overwrite'])
    assert (root / 'samples').is_dir() and (root / 'v1.0-synth').is_dir()
    assert not [name for name in os.listdir(root) if name.startswith('.')]
    with open(train, 'rb') as f:
        assert pickle.load(f)['metainfo']['split'] == 'train'


def test_verify_names_every_bad_file(tmp_path):
    root = tmp_path / 'root'
    create_data(SYNTH + ['--out-dir', str(root), '--with-infos', '--verify'])
    cams = sorted((root / 'samples' / 'CAM_FRONT').iterdir())
    data = cams[0].read_bytes()
    cams[0].write_bytes(data[:len(data) // 2])                 # truncated JPEG
    cams[1].write_bytes(b'')                                   # zero bytes
    back = sorted((root / 'samples' / 'CAM_BACK').iterdir())[0]
    shutil.copy(sorted((tmp_path / 'root' / 'samples' / 'CAM_FRONT').iterdir())[2], back)
    import cv2
    cv2.imwrite(str(back), cv2.imread(str(back))[:20])         # complete JPEG of the wrong size
    info = root / 'nuscenes_infos_temporal_val.pkl'
    info.write_bytes(info.read_bytes()[:100])                  # truncated info pkl
    with pytest.raises(DatasetCheckError) as err:
        create_data(['verify', '--root-path', str(root), '--version', 'v1.0-synth'])
    message = str(err.value)
    assert message.startswith(f'4 problem(s) in {root}')
    assert f'{cams[0]} of sample' in message and 'no end-of-image marker FF D9' in message
    assert f'{cams[1]} of sample' in message and 'the file is empty (0 bytes)' in message
    assert f'{back} of sample' in message and 'size (H, W) (20, 64) differs from (36, 64)' in message
    assert f'info file {info} could not be read' in message


def test_vehicle_mix_sets_the_spawned_classes_and_bad_mixes_are_refused(tmp_path):
    def categories(root):
        with open(root / 'v1.0-synth' / 'category.json') as f:
            names = {c['token']: c['name'] for c in json.load(f)}
        with open(root / 'v1.0-synth' / 'instance.json') as f:
            return {names[i['category_token']] for i in json.load(f)}

    create_data(SYNTH + ['--out-dir', str(tmp_path / 'default'), '--seed', '0'])
    create_data(SYNTH + ['--out-dir', str(tmp_path / 'buses'), '--seed', '0', '--vehicle-mix', 'bus=1'])
    default, buses = categories(tmp_path / 'default'), categories(tmp_path / 'buses')
    assert 'vehicle.car' in default
    assert {c for c in buses if c.startswith('vehicle.')} == {'vehicle.bus.rigid'}
    for mix, message in ((['plane=1'], 'not synthetic vehicle classes'), (['car=-1'], '>= 0'),
                         (['car=0'], 'not all 0')):
        with pytest.raises(SystemExit, match=f'--vehicle-mix: .*{message}'):
            create_data(SYNTH + ['--out-dir', str(tmp_path / 'bad'), '--vehicle-mix'] + mix)
    with pytest.raises(SystemExit):
        create_data(SYNTH + ['--out-dir', str(tmp_path / 'bad'), '--vehicle-mix', 'bus'])
    assert not (tmp_path / 'bad').exists()

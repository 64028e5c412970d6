"""Draw BEV predictions against GT, one PNG per frame: boxes with track ids, map masks, camera projections.

    # run a model over its test split (tools/test.py's config flow) and draw every frame
    python tools/visualize.py model CONFIG CHECKPOINT --out-dir DIR [--cfg-options k=v ...] [common options]
    # draw a results dump of the test loop (mmengine DumpResults pickle of the predicted data samples)
    python tools/visualize.py results RESULTS.pkl --out-dir DIR [--point-cloud-range ...] [common options]
    common options: [--score-thr 0.0] [--scale 8] [--no-cameras] [--contract-orientation]

PNG layout (projects/nexusflow/analysis/frame_render.py): left, the GT map (divider, ped_crossing, boundary,
drivable) and GT boxes coloured by instance id; right, the predicted map masks, the GT footprints in grey and the
predicted boxes coloured and labelled by track id (one colour per id, the same in every frame); below, the six
camera images with the predicted (track colour) and GT (white) boxes. BEV panels show LiDAR +y (forward) up unless
--contract-orientation keeps the grid's row order (row i <-> y). Files: DIR/<scene_name>/<frame_idx>_<token>.png.

``model`` mode also writes DIR/results.pkl (DumpResults), which ``results`` mode re-draws without the model. A dump
of any test run is made with ``tools/test.py CONFIG CKPT --cfg-options
test_evaluator.type=DumpResults test_evaluator.out_file_path=results.pkl`` when the config's test_evaluator is a
single dict; with a list, set ``test_evaluator = dict(type='DumpResults', out_file_path='results.pkl')`` in a
config that inherits the test config.
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import cv2  # noqa: E402
import mmengine  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from tools.launch_utils import trust_checkpoints  # noqa: E402
from tools.test import build_config  # noqa: E402

from projects.nexusflow.analysis.frame_render import (frame_filename, frame_record, load_camera_images,  # noqa: E402
                                                      record_grid, render_frame)
from projects.nexusflow.engine.visualization_hook import DEFAULT_PC_RANGE, enable_visualization  # noqa: E402
from projects.nexusflow.evaluation import check_checkpoint  # noqa: E402

RESULTS_FILE = 'results.pkl'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--out-dir', required=True, help='folder of the PNGs')
    common.add_argument('--score-thr', type=float, default=0.0, help='draw predicted boxes with score >= this')
    common.add_argument('--scale', type=int, default=8, help='pixels per BEV cell (default 8)')
    common.add_argument('--no-cameras', action='store_true', help='leave out the camera images')
    common.add_argument('--contract-orientation', action='store_true',
                        help='keep the BEV grid row order (row i <-> LiDAR y, +y down) instead of +y up')
    modes = parser.add_subparsers(dest='mode', required=True)
    model = modes.add_parser('model', parents=[common], help='run CONFIG + CHECKPOINT over the test split')
    model.add_argument('config', help='test config file')
    model.add_argument('checkpoint', help='checkpoint file (path or URL)')
    model.add_argument('--work-dir', help='run folder for the logs (default: ./work_dirs/<config name>)')
    model.add_argument('--max-missing-ratio', type=float, default=0.1,
                       help='largest fraction of the model state the checkpoint may leave unset (default 0.1)')
    model.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    results = modes.add_parser('results', parents=[common], help='draw a DumpResults pickle')
    results.add_argument('results', help='pickle of predicted data samples (mmengine DumpResults)')
    results.add_argument('--point-cloud-range', type=float, nargs=6, default=DEFAULT_PC_RANGE,
                         metavar=('X_MIN', 'Y_MIN', 'Z_MIN', 'X_MAX', 'Y_MAX', 'Z_MAX'),
                         help='BEV range of the map masks, metres (default: +-51.2 m)')
    results.add_argument('--canvas-size', type=int, nargs=2, metavar=('H', 'W'),
                         help='BEV grid cells (default: the shape of the map masks)')
    return parser.parse_args(argv)


def run_model(args) -> int:
    """tools/test.py's flow with the visualization hook on and a DumpResults evaluator; returns the frame count."""
    out_dir = osp.abspath(args.out_dir)
    cfg = build_config(argparse.Namespace(config=args.config, checkpoint=args.checkpoint, work_dir=args.work_dir,
                                          cfg_options=args.cfg_options, launcher='none', show_dir=None))
    enable_visualization(cfg, out_dir, score_thr=args.score_thr, scale=args.scale,
                         show_cameras=not args.no_cameras, forward_up=not args.contract_orientation)
    cfg.test_evaluator = dict(type='DumpResults', out_file_path=osp.join(out_dir, RESULTS_FILE))
    trust_checkpoints()
    runner = Runner.from_cfg(cfg)
    check_checkpoint(runner.model.module if is_model_wrapper(runner.model) else runner.model, args.checkpoint,
                     max_missing_ratio=args.max_missing_ratio)
    runner.test()
    return len(mmengine.load(osp.join(out_dir, RESULTS_FILE)))


def draw_results(args) -> int:
    """Draw every sample of a DumpResults pickle; returns the frame count."""
    if not osp.isfile(args.results):
        raise FileNotFoundError(f'results file {args.results} does not exist; write it with `tools/visualize.py '
                                'model ...` or a DumpResults test_evaluator')
    samples = mmengine.load(args.results)
    if not isinstance(samples, list):
        raise TypeError(f'{args.results} holds {type(samples).__name__}, expected the list of predicted data '
                        'samples that DumpResults writes')
    for sample in samples:
        record = frame_record(sample, score_thr=args.score_thr)
        grid = record_grid(record, args.point_cloud_range, args.scale, args.canvas_size)
        images = None if args.no_cameras else load_camera_images(record)
        path = osp.join(args.out_dir, frame_filename(record))
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, render_frame(record, grid, images, forward_up=not args.contract_orientation))
    return len(samples)


def main(argv=None) -> int:
    args = parse_args(argv)
    count = run_model(args) if args.mode == 'model' else draw_results(args)
    print(f'drew {count} frames into {args.out_dir}')
    return count


if __name__ == '__main__':
    main()

"""Evaluate a saved nuScenes tracking result json with the devkit (overall and per city), without a model.

    python tools/eval_track.py work_dirs/x/<timestamp>/tracking_eval/results_nusc_tracking.json \
        --data-root data/nuscenes --version v1.0-trainval --eval-set val [--out-dir DIR] [--no-per-city]

The json is the one NuScenesTrackingMetric writes (or any submission in the nuScenes tracking format). The devkit's
summaries go to --out-dir (default: next to the json, in eval_<eval-set>/), and the figures are printed.
"""
import argparse
import json
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from projects.nexusflow.evaluation.tracking_eval import evaluate_tracking_results  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results_json', help='nuScenes tracking result json')
    parser.add_argument('--data-root', required=True, help='nuScenes root holding <version>/')
    parser.add_argument('--version', required=True, help='e.g. v1.0-trainval, v1.0-mini, v1.0-synth')
    parser.add_argument('--eval-set', required=True,
                        help='devkit split, e.g. val, mini_val, or a key of <data-root>/<version>/splits.json')
    parser.add_argument('--out-dir', help='where the devkit writes its summaries (default: '
                        '<json dir>/eval_<eval-set>)')
    parser.add_argument('--eval-config', default='tracking_nips_2019', help='devkit config name or json path')
    parser.add_argument('--no-per-city', action='store_true', help='skip the per-city evaluations')
    parser.add_argument('--render-curves', action='store_true', help='draw the devkit PDF curves')
    parser.add_argument('--verbose', action='store_true', help='print the devkit progress')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.results_json):
        raise FileNotFoundError(f'results json {args.results_json} does not exist; NuScenesTrackingMetric writes '
                                f'it to <work_dir>/<timestamp>/tracking_eval/results_nusc_tracking.json')
    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.results_json)), f'eval_{args.eval_set}')
    metrics = evaluate_tracking_results(args.results_json, args.data_root, args.version, args.eval_set, out_dir,
                                        eval_config=args.eval_config, per_city=not args.no_per_city,
                                        render_curves=args.render_curves, verbose=args.verbose)
    print(json.dumps(metrics, indent=2))
    print(f'devkit summaries written to {out_dir}')
    return metrics


if __name__ == '__main__':
    main()

"""Feature analysis of a trained model (the papers' Sec. 3.4): city MMD, PCA scree and t-SNE of features / latents.

    python tools/analyze_features.py CONFIG CHECKPOINT [--out-dir DIR] [--ann-file PKL] \
        [--tap NAME=MODULE:KIND ...] [--num-subsets 10] [--subset-size N] [--seed 0] [--cfg-options k=v ...]

Builds the model and the test dataloader from CONFIG exactly as tools/test.py does (same overrides and checkpoint
check; sequential per-scene inference with SceneAwareSampler, batch size 1), runs the split (the config's test split,
or --ann-file), and collects per sample:

- the task features read through read-only taps, mean-pooled per sample (``taps/<name>``); default: ``bev`` =
  ``bev_encoder`` output, ``track`` = ``track_head.decoder`` last-layer query states, ``map`` =
  ``map_head.transformer.encoder`` output (the taps NexusFlow reads). ``--tap name=module:kind`` replaces them
  (kind ``bev`` takes the BEV encoder's grid, ``queries`` the last decoder layer, ``feature_map`` a CNN map);
- the per-task latents of a NexusFlow plug-in, when the model has one (``latents/<task>``).

Samples are grouped by city (metainfo location, ``boston-*`` / ``singapore-*``). Written into --out-dir
(default ``<work_dir>/feature_analysis``): ``analysis.json`` (MMD Boston vs Singapore and a random-halves
reference, mean +- std over --num-subsets random equal-size subsets, Gaussian kernel with median bandwidth,
unbiased; MMD between the tasks of a group; PCA spectra), ``scree.png``, ``tsne_taps.png``, ``tsne_latents.png``
and ``features.npz`` (the collected rows, for further analysis); the table is printed.
"""
import argparse
import json
import os
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import DictAction  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from tools.test import build_config  # noqa: E402

from projects.nexusflow.analysis import analyze_collection, collect_features, default_taps, format_table  # noqa: E402
from projects.nexusflow.evaluation import check_checkpoint  # noqa: E402

TAP_KINDS = ('bev', 'queries', 'feature_map')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file of the trained model')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--out-dir', help='output folder (default: <work_dir>/feature_analysis)')
    parser.add_argument('--work-dir', help='run folder for the logs (default: ./work_dirs/<config name>)')
    parser.add_argument('--ann-file', help='info pkl of the split to analyse, relative to the data root '
                        '(default: the config\'s test split)')
    parser.add_argument('--tap', action='append', metavar='NAME=MODULE:KIND',
                        help=f'a feature tap (repeatable), KIND one of {TAP_KINDS}; default: bev, track, map')
    parser.add_argument('--num-subsets', type=int, default=10, help='random subset draws per MMD (default 10)')
    parser.add_argument('--subset-size', type=int, help='samples per group and draw (default: half the smaller '
                        'group)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the subset draws and of t-SNE')
    parser.add_argument('--max-missing-ratio', type=float, default=0.1,
                        help='largest fraction of the model state the checkpoint may leave unset (default 0.1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.dataset.data_root=...')
    return parser.parse_args(argv)


def parse_taps(texts: list, model) -> dict:
    """``['name=module:kind', ...]`` -> ``{name: tap spec}``; ``bev`` taps get the BEV encoder's ``(bev_h, bev_w)``."""
    taps = {}
    for text in texts:
        name, sep, target = text.partition('=')
        module, sep2, kind = target.partition(':')
        if not (sep and sep2 and name and module) or kind not in TAP_KINDS:
            raise ValueError(f'--tap must be NAME=MODULE:KIND with KIND in {TAP_KINDS}, got {text!r} '
                             '(e.g. track=track_head.decoder:queries)')
        taps[name] = dict(module=module, kind=kind)
        if kind == 'bev':
            taps[name]['bev_shape'] = default_taps(model)['bev']['bev_shape']
    return taps


def build_runner(args):
    """The tools/test.py config (batch size 1, optional --ann-file) and its Runner with the checkpoint loaded."""
    cfg = build_config(argparse.Namespace(config=args.config, checkpoint=args.checkpoint, work_dir=args.work_dir,
                                          cfg_options=args.cfg_options, launcher='none', show=False,
                                          show_dir=None, out=None))
    cfg.test_dataloader.batch_size = 1  # sequential inference; query sets unpadded (see FeatureProbe.pooled)
    if args.ann_file is not None:
        cfg.test_dataloader.dataset.ann_file = args.ann_file
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_checkpoint(model, args.checkpoint, max_missing_ratio=args.max_missing_ratio)
    runner.load_checkpoint(args.checkpoint, map_location='cpu')
    return cfg, runner, model


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg, runner, model = build_runner(args)
    taps = parse_taps(args.tap, model) if args.tap else default_taps(model)
    collection = collect_features(model, runner.build_dataloader(cfg.test_dataloader), taps)
    out_dir = args.out_dir or osp.join(cfg.work_dir, 'feature_analysis')
    os.makedirs(out_dir, exist_ok=True)
    collection.save(osp.join(out_dir, 'features.npz'))
    summary = analyze_collection(collection, out_dir, num_subsets=args.num_subsets, subset_size=args.subset_size,
                                 seed=args.seed)
    summary = dict(config=args.config, checkpoint=args.checkpoint, taps=taps, **summary)
    with open(osp.join(out_dir, 'analysis.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(format_table(summary))
    print(f'\nwrote {osp.join(out_dir, "analysis.json")}, features.npz and {len(summary["figures"])} PNGs')
    return summary


if __name__ == '__main__':
    main()

"""Reproduce a results table on synthetic data: generate the sets, pretrain, train / test / analyse every row.

    python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_geo_table.py \
        [--rows full baseline ...] [--seeds 0 1 2] [--out-dir work_dirs/reproduce/<protocol>] [--no-analysis] \
        [--report-only] [--dry-run] [--include earlier/results.json ...]

Every training and test goes through tools/train.py and tools/test.py in a subprocess, exactly as a user runs them.
The harness is resumable: run the same command again after an interruption and finished stages are skipped, an
interrupted training continues from its latest checkpoint, shared stages (data, pretraining, the phase-1 runs that
phase-2 rows start from) run once. It prints which stage runs, the epoch, and the ETA of the table from the measured
durations, and after every run rewrites ``<out-dir>/report/{results.json,results.md,per_city.png,mmd.png}``; the
page ends with the protocol's comparisons (e.g. whether Full beats the Baseline in the city without a task's labels
by more than 3 seed stds, and NexusFlow two-phase against its phase-2 control seed by seed).
``--include`` merges the runs of earlier reports of the same protocol (e.g. seeds run in another session or on
another machine) into the table; a run on disk wins over an included one, and the page says how much a run that
both have moved (the repeatability of a run across sessions).
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

from projects.nexusflow.reproduction import (Executor, StagePlanner, collect, expand_runs, load_protocol,  # noqa: E402
                                             markdown, plot)

# ETA figures before anything of a kind has been measured (seconds, tiny configs on 2 CPU cores)
DEFAULT_ESTIMATES = dict(data=60, train=1200, test=150, analysis=120)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('protocol', help='protocol config (configs/uniad_nexusflow/reproduce/*.py)')
    parser.add_argument('--rows', nargs='+', help='rows to run (default: all); rows they start from are added')
    parser.add_argument('--seeds', nargs='+', type=int, help="seeds for every selected row (default: each row's own)")
    parser.add_argument('--out-dir', help='output folder (default: work_dirs/reproduce/<protocol name>)')
    parser.add_argument('--no-analysis', action='store_true', help='skip the MMD feature analysis of each run')
    parser.add_argument('--report-only', action='store_true', help='only rebuild the report from finished runs')
    parser.add_argument('--dry-run', action='store_true', help='print the stages and their state, run nothing')
    parser.add_argument('--include', nargs='+', default=[], metavar='RESULTS_JSON',
                        help='earlier results.json files of this protocol whose runs (of the selected rows) are not '
                             'on disk join the report')
    return parser.parse_args(argv)


def write_report(protocol, runs, planner, stages, out_dir: str, include=()) -> dict:
    """Collect the finished runs and write ``report/results.json``, ``results.md`` and the plots."""
    report_dir = osp.join(out_dir, 'report')
    os.makedirs(report_dir, exist_ok=True)
    results = collect(protocol, runs, planner, stages, include)
    with open(osp.join(report_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    if results['rows']:
        with open(osp.join(report_dir, 'results.md'), 'w') as f:
            f.write(markdown(results, protocol))
        plot(results, protocol, report_dir)
    return results


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO_ROOT)
    protocol = load_protocol(args.protocol)
    out_dir = args.out_dir or osp.join('work_dirs', 'reproduce', protocol.name)
    runs = expand_runs(protocol, args.rows, args.seeds)
    planner = StagePlanner(protocol, out_dir)
    stages = planner.plan(runs, analysis=not args.no_analysis)
    executor = Executor(out_dir, estimates=DEFAULT_ESTIMATES)
    if args.dry_run:
        for stage in stages:
            print(f'{"done" if stage.done else "todo"}  {stage.kind:8s} {stage.key}')
        print(f'{len(runs)} runs, {sum(not s.done for s in stages)} stages to do')
        return
    if not args.report_only:
        write_report(protocol, runs, planner, stages, out_dir, args.include)  # a bad --include fails before training
        executor.run(stages, on_done=lambda stage: stage.kind in ('test', 'analysis')
                     and write_report(protocol, runs, planner, stages, out_dir, args.include))
    results = write_report(protocol, runs, planner, stages, out_dir, args.include)
    print(f'{len(results["rows"])} rows with results; report in {osp.join(out_dir, "report")}')


if __name__ == '__main__':
    main()

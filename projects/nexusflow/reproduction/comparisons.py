"""The comparisons a protocol asks of its table: is a gap larger than the seed noise, does a row beat its control
(computed here, rendered by ``results.markdown``).

* unpaired (``paired=False``): ``reference - row`` of the means over each row's seeds, against three times the
  larger of the two seed stds (the issue's discrimination criterion, e.g. Full against the Baseline in the city
  without a task's labels); undecided while either row has fewer than two seeds;
* paired (``paired=True``): ``row - reference`` seed by seed over the seeds both have (rows that start from the same
  checkpoint of a seed, e.g. a phase-2 row and its phase-2 control), their mean ± std and how many are positive and
  negative at the table's precision: a method that helps has differences of one sign.

``results.json`` keeps them under ``comparisons``::

    [{name, row, reference, paired, metrics: {metric: {row, reference, gap, noise, separated}}}]      # unpaired
    [{name, row, reference, paired, seeds, metrics: {metric: {differences, mean_std, positive, negative}}}]  # paired
"""
import math
from typing import Dict, List, Sequence

from .protocol import Comparison, metric_digits

SEPARATION = 3.0


def mean_std(values: Sequence[float]) -> dict:
    """``{mean, std, n}`` over the finite values; ``std`` is the sample std (ddof 1), 0 for one value."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not values:
        return dict(mean=float('nan'), std=float('nan'), n=0)
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return dict(mean=mean, std=math.sqrt(var), n=len(values))


def _unpaired(summary: Dict[str, Dict[str, dict]], comparison: Comparison) -> Dict[str, dict]:
    figures = {}
    for metric in comparison.metrics:
        row, reference = summary[comparison.row][metric], summary[comparison.reference][metric]
        gap = reference['mean'] - row['mean']
        decided = row['n'] > 1 and reference['n'] > 1
        noise = SEPARATION * max(row['std'], reference['std']) if decided else None
        figures[metric] = dict(row=row, reference=reference, gap=gap, noise=noise,
                               separated=abs(gap) > noise if decided else None)
    return figures


def _paired(rows: Dict[str, dict], comparison: Comparison) -> dict:
    row, reference = rows[comparison.row]['seeds'], rows[comparison.reference]['seeds']
    seeds = sorted(set(row) & set(reference), key=int)
    figures = {}
    for metric in comparison.metrics:
        differences = [row[s]['metrics'].get(metric, float('nan')) - reference[s]['metrics'].get(metric, float('nan'))
                       for s in seeds]
        shown = [round(d, metric_digits(metric)) for d in differences]  # a sign below the table's precision is a tie
        figures[metric] = dict(differences=differences, mean_std=mean_std(differences),
                               positive=sum(d > 0 for d in shown), negative=sum(d < 0 for d in shown))
    return dict(seeds=seeds, metrics=figures)


def compare(results: dict, comparisons: Sequence[Comparison]) -> List[dict]:
    """The figures of every comparison whose two rows have results (``results`` as built by ``collect``)."""
    entries = []
    for comparison in comparisons:
        if comparison.row not in results['rows'] or comparison.reference not in results['rows']:
            continue
        entry = dict(name=comparison.name, row=comparison.row, reference=comparison.reference,
                     paired=comparison.paired)
        if comparison.paired:
            entry.update(_paired(results['rows'], comparison))
        else:
            entry['metrics'] = _unpaired(results['summary'], comparison)
        entries.append(entry)
    return entries

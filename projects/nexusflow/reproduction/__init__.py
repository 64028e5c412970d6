"""The reproduction harness behind ``tools/reproduce.py``: protocols, resumable stages, results and the page.

A leaf of the package: nothing in ``models``, ``datasets`` or ``evaluation`` imports it, and it drives the project's
tools only through their command lines (the same code path as a user's ``tools/train.py`` / ``tools/test.py``).
"""
from .executor import Executor, run_subprocess
from .protocol import DataSpec, Protocol, Row, Run, expand_runs, load_protocol
from .results import collect, markdown, mean_std, plot
from .stages import Stage, StagePlanner, data_options

__all__ = ['DataSpec', 'Executor', 'Protocol', 'Row', 'Run', 'Stage', 'StagePlanner', 'collect', 'data_options',
           'expand_runs', 'load_protocol', 'markdown', 'mean_std', 'plot', 'run_subprocess']

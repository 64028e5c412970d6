"""Installs the NexusFlow-for-UniAD plugin as the importable package ``projects.nexusflow``.

The heavy, order-sensitive part of the stack (torch 2.13, mmcv 2.1.0 built with ops) is installed by
``tools/setup_env.sh``; ``install_requires`` lists the rest so that ``pip check`` sees the real dependencies.
"""
from pathlib import Path

from setuptools import find_namespace_packages, setup


def read_requirements(name):
    lines = Path(__file__).parent.joinpath('requirements', name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith('#')]


setup(
    name='nexusflow-uniad',
    version='0.1.0',
    description='NexusFlow for UniAD: partially supervised tracking + online mapping on MMDetection3D 1.x',
    long_description=Path(__file__).parent.joinpath('README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_namespace_packages(include=['projects', 'projects.nexusflow', 'projects.nexusflow.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.1', 'mmcv==2.1.0'] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)

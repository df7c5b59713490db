"""The hostile-delivery corpus of issue 18 (tests/hostile/corpus.py) and its acceptance test."""

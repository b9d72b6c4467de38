"""Instructor tooling: make assignments from the exercises, grade submitted notebooks.

- :func:`make_assignment` (``fromscratch-assign``): a learner's notebook, an nbgrader
  source notebook and a manifest;
- :func:`grade` (``fromscratch-grade``): run every submission in a fresh sandboxed kernel
  with the pristine checks; write a CSV gradebook and Markdown feedback.

See ``chapters/instructors.md`` for a worked example and what isolation is provided.
"""

from .assign import Assignment, make_assignment
from .grade import Gradebook, Options, StudentResult, grade
from .manifest import Manifest, ManifestError
from .manifest import load as load_manifest

__all__ = ["Assignment", "Gradebook", "Manifest", "ManifestError", "Options", "StudentResult",
           "grade", "load_manifest", "make_assignment"]

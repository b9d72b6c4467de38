# %% [markdown]
# # Chapter title (the model type)
#
# <!-- The template every chapter starts from. Copy it to chapters/NN_name.py, add the
# chapter to _toc.yml and src/fromscratch/course_map.py, write its exercises in
# exercises/<name>/, then `make notebooks`. The rules in the comments below are what the
# tests and the reviewers hold every chapter to. -->
#
# Two or three paragraphs: what the model is for, the one idea it is built on, and what
# this chapter builds, measures and proves.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - ...
# ```
#
# **Prerequisites**: earlier chapters this one builds on.
#
# | Key idea | Experiment that shows it |
# |---|---|
# | one row per key idea of the seed guide | [a link to its section](anchor) |
#
# Rules for every chapter (see also "Working on the course" in the README):
# - Each piece is built step by step, shapes printed, and checked against PyTorch (or a
#   second independent formulation) before it is used. The reusable version lives once
#   in `src/fromscratch/`; the notebook imports and explains it.
# - Every claim survives a control. Each comparison gives every side its own best honest
#   recipe (chosen on a validation split, never on the test set); each learned model is
#   compared with the simplest strong baseline (logistic regression, an n-gram, PCA, a
#   scripted policy, ...); each "the model learned X" is shown against an untrained,
#   shuffled or ablated control.
# - No number in prose is typed by hand unless an output right there shows it; every
#   measurement a key claim rests on is visible in the chapter, not hidden in the package.
#   When a number disagrees with the story, change the story.
# - Outputs must reproduce on any CPU within the tolerances of `tests/output_rules.py`:
#   print float noise as a bound (`fromscratch.report.bound`), not as digits; time with
#   `fromscratch.training.best_time` and assert only ratios with wide margins; only
#   timing and random-sample cells get the `nbval-ignore-output` tag.
# - One training run is one draw: a number that moves between seeds is measured over
#   several seeds and printed with its spread (`mean ± sd`); a decision printed as text
#   (which recipe wins) needs a margin that no CPU's float noise can flip.
# - Figures: axis labels with units, integer epoch ticks, no curve hidden under another,
#   one colour scale (with a colour bar) where panels are compared. Show every figure
#   through `fromscratch.plotting`: its helpers, or `show(fig, caption=...)` instead of
#   `plt.show()` for a figure you draw yourself. Every figure gets a `caption=` that says
#   what it shows (the website numbers it "Figure N.k", so the prose can say "Figure 3.2"
#   rather than "the figure above"); `show` also stores alt text and a phone layout
#   (panels stacked, same font sizes), so keep panel text at 7 pt or more.
# - Tables: print a table with `fromscratch.report.show_table(header, rows)` (a table on
#   the website, readable on a phone), not as column-aligned text.
# - Cells that are plumbing rather than teaching (imports, drawing a figure) get the tag
#   `hide-input` (`# %% tags=["hide-input"]`): the website collapses their code.
# - The pages speak to readers: no notes to the course's maintainers (plans, guides,
#   prototypes) and no internal keys in tables; tests/browser/test_readers.py checks it.
# - Code lines stay short enough not to scroll sideways on the website.
# - The whole notebook runs in under 60 s on 2 CPU cores (aim for 45 s on an idle machine,
#   so a slower CPU still fits; `tools/build_notebooks.py` records the time and a test fails
#   past 75 s), kernel under 2 GB; the quality bar is asserted in the notebook and
#   recorded with `record(...)`.

# %% tags=["hide-input"]
from fromscratch import device, seed_everything

seed_everything(0)
print("device:", device())

# %% [markdown]
# ## Sections: data, each piece checked, the model, training, one section per key idea
#
# ## Results

# %% [markdown]
# ## Summary
#
# ## Further reading
#
# ## Exercises
#
# Each exercise has a check below it. Run your cell, then the check: it tells you which
# input failed, what your code returned and what is wrong with it (for a function, the
# expected output; for a measured number, whether it is too high or too low).
#
# <!-- Exercise checks use the patterns of src/fromscratch/checks/core.py, which close
# whole classes of wrong answers: check_function / call_learner / check_measurement run
# the answer traced (core.Guard) and refuse it when it executes the piece it must write
# (pass the course's and PyTorch's implementations as forbid=; the checks' own code is
# refused without asking); check_function(fresh=...) and check_measurement(fresh=...)
# add an input drawn at check time; a measurement's feedback never prints the right
# value; check_trained_model(refuse_classes=...) refuses the course's model of the piece
# anywhere the model holds it (core.held_objects) and traces its forward throughout;
# generated digits must pass generative.copy_test. Probes test token ids from the whole
# vocabulary, lengths and positions beyond any constant a learner might hard-code, and
# targets drawn at check time; tests/test_cheats.py holds one shortcut per class for
# every exercise. -->

# %%
from fromscratch.exercises import show_solution  # noqa: F401  (used by the learner)

# %%
# EXERCISES: <name>

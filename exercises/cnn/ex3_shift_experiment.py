# ---
# id: cnn-shift-experiment
# title: How much does a 2-pixel shift cost?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# The chapter trained with shifts of at most 1 pixel. Run an experiment: write
# `measure_shifted_accuracy(model, X, y)` that returns the test accuracy (a fraction
# between 0 and 1) of `model` on the images `X` shifted **2 pixels to the right**, using
# `shift_images` and `accuracy` from the course package. The check runs it on the chapter's
# trained `cnn` and prints your number next to the unshifted accuracy.
# How much does accuracy drop? Is a CNN with pooling translation-*invariant*, or only
# approximately so?

# %% [solution]
from fromscratch.data import shift_images
from fromscratch.training import accuracy


def measure_shifted_accuracy(model, X, y):
    ### BEGIN SOLUTION
    return accuracy(model, shift_images(X, dx=2), y)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.cnn import check_shifted_accuracy

check_shifted_accuracy(measure_shifted_accuracy, cnn, split.X_test, split.y_test)

# %% [setup]
import torch
from fromscratch.data import load_digits_split, random_shift
from fromscratch.models.cnn import CNNConfig, DigitsCNN
from fromscratch.training import fit

split = load_digits_split()
torch.manual_seed(0)
cnn = DigitsCNN(CNNConfig())
fit(cnn, split.train, epochs=3, lr=3e-3, augment=random_shift, progress=False)

# %% [mistake] forgot to shift | expect: accuracy on the *unshifted* test images
from fromscratch.training import accuracy


def measure_shifted_accuracy(model, X, y):
    return accuracy(model, X, y)

# %% [mistake] shifted left | expect: shifted 2 pixels *left*
from fromscratch.data import shift_images
from fromscratch.training import accuracy


def measure_shifted_accuracy(model, X, y):
    return accuracy(model, shift_images(X, dx=-2), y)

# %% [mistake] a percentage | expect: divide by 100
from fromscratch.data import shift_images
from fromscratch.training import accuracy


def measure_shifted_accuracy(model, X, y):
    return 100 * accuracy(model, shift_images(X, dx=2), y)

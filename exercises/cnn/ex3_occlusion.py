# ---
# id: cnn-occlusion
# title: Which half of a digit does the CNN need?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# Run an occlusion experiment: write `measure_top_half_blanked(model, X, y)` that returns
# the accuracy (a fraction between 0 and 1) of `model` on the images `X` with their **top
# half (rows 0 to 3) set to 0**, using `accuracy` from the course package. Don't change
# `X` itself: blank a copy. The check runs it on the chapter's trained `cnn_model` and the
# test images.
# Then blank the bottom half instead (rows 4 to 7): which half carries more of what the
# CNN uses to tell the digits apart? Which digits would you expect to confuse without
# their top half?

# %% [solution]
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    ### BEGIN SOLUTION
    X_blank = X.clone()
    X_blank[..., :4, :] = 0  # rows 0-3 of every image (N, 1, 8, 8)
    return accuracy(model, X_blank, y)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.cnn import check_occlusion

check_occlusion(measure_top_half_blanked, cnn_model, split.X_test, split.y_test)

# %% [setup]
import torch
from fromscratch.data import load_digits_split, random_shift
from fromscratch.models.cnn import CNNConfig, DigitsCNN
from fromscratch.training import fit

split = load_digits_split()
torch.manual_seed(0)
cnn_model = DigitsCNN(CNNConfig())
fit(cnn_model, split.train, epochs=3, lr=3e-3, augment=random_shift, progress=False)

# %% [mistake] forgot to blank | expect: accuracy on the *unoccluded* images
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    return accuracy(model, X, y)

# %% [mistake] blanked the bottom half | expect: with the *bottom* half blanked
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., 4:, :] = 0
    return accuracy(model, X_blank, y)

# %% [mistake] blanked columns, not rows | expect: with the *left* half blanked
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., :4] = 0
    return accuracy(model, X_blank, y)

# %% [mistake] off by one row | expect: blanks only rows 0 to 2
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., :3, :] = 0
    return accuracy(model, X_blank, y)

# %% [mistake] changed the caller's images | expect: Work on a copy
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X[..., :4, :] = 0
    return accuracy(model, X, y)

# %% [mistake] measured the global model, not its argument | expect: not the `model` argument
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., :4, :] = 0
    return accuracy(cnn_model, X_blank, y)

# %% [mistake] model left in training mode | expect: Call model.eval()
import torch


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., :4, :] = 0
    with torch.no_grad():
        return (model(X_blank).argmax(dim=1) == y).float().mean().item()

# %% [mistake] a percentage | expect: divide by 100
from fromscratch.training import accuracy


def measure_top_half_blanked(model, X, y):
    X_blank = X.clone()
    X_blank[..., :4, :] = 0
    return 100 * accuracy(model, X_blank, y)

"""Teaching problems: embedded targets, user files, f0 and alternatives, expressions."""

from __future__ import annotations

import numpy as np
import pytest
from mltk_plugins.teach import data as D
from mltk_plugins.teach.expression import evaluate

from mltk.errors import DataError, UsageError


def test_photographs_are_standardised_grey_squares():
    prob = D.load("chelsea", size=32)
    assert prob.grid == (32, 32) and prob.n == 1024
    assert abs(prob.target.mean()) < 1e-12 and abs(prob.target.std() - 1) < 1e-12
    assert np.all(prob.f0 == 0) and prob.f0_expression == "0"
    assert np.array_equal(prob.x[33], [1.0, 1.0])  # row-major pixel coordinates


def test_faces_teach_one_face_from_another_and_digits_the_mean_zero_from_an_eight():
    from sklearn.datasets import load_digits

    faces = D.load("faces", face=3, start_face=7)
    assert faces.grid == (25, 25) and not np.allclose(faces.target, faces.f0)
    assert abs(faces.f0.std() - 1) < 1e-12
    d = load_digits()
    digits = D.load("digits")
    mean0 = (d.images[d.target == 0] / 16).mean(0)
    assert np.allclose(digits.target, mean0.ravel())
    assert np.allclose(digits.f0, d.images[np.flatnonzero(d.target == 8)[0]].ravel() / 16)
    assert digits.alternative is not None and not np.allclose(digits.alternative, digits.target)


def test_a_csv_of_samples_is_the_pool(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("x1,x2,y\n0,1,2.5\n1,0,-1\n2,2,0\n")
    prob = D.load(str(f))
    assert prob.x.tolist() == [[0, 1], [1, 0], [2, 2]] and prob.target.tolist() == [2.5, -1, 0]
    zero_start = D.load(str(f), f0="x1 + x2")
    assert zero_start.f0.tolist() == [1, 1, 4] and zero_start.f0_expression == "x1 + x2"


def test_a_csv_without_a_y_column_is_a_data_error(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("x1,x2,value\n0,1,2\n")
    with pytest.raises(DataError, match="has no y column"):
        D.load(str(f))


def test_target_and_f0_grids_of_different_shapes_are_a_data_error(tmp_path):
    np.save(tmp_path / "t.npy", np.ones((8, 9)))
    np.save(tmp_path / "f0.npy", np.ones((9, 8)))
    with pytest.raises(DataError, match="is 9x8, the target 8x9"):
        D.load(str(tmp_path / "t.npy"), f0=str(tmp_path / "f0.npy"))


def test_a_non_finite_target_is_a_data_error(tmp_path):
    grid = np.ones((5, 5))
    grid[2, 3] = np.nan
    np.save(tmp_path / "t.npy", grid)
    with pytest.raises(DataError, match="1 non-finite"):
        D.load(str(tmp_path / "t.npy"))
    with pytest.raises(DataError, match="non-finite"):
        D.load("toy1d", f0="log(x)")  # log of negative inputs


def test_expressions_evaluate_like_numpy():
    x = np.array([[0.0, 1.0], [2.0, -1.0]])
    assert evaluate("x1**2 + 3*x2 - 1", x).tolist() == [2.0, 0.0]
    assert np.allclose(
        evaluate("normal(x, -2, 0.5)", x[:, :1]),
        np.exp(-(((x[:, 0] + 2) / 0.5) ** 2) / 2) / (0.5 * np.sqrt(2 * np.pi)),
    )
    assert evaluate("2", x).tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.__class__",
        "[x for x in x]",
        "(lambda: 1)()",
        "open('f')",
        "x[0]",
        "exp(x, out=x)",
    ],
)
def test_expressions_refuse_anything_but_arithmetic_and_listed_functions(text):
    with pytest.raises(UsageError):
        evaluate(text, np.zeros((3, 1)))


def test_an_unknown_variable_names_the_variables():
    with pytest.raises(UsageError, match="its variables are x, x1"):
        evaluate("y + 1", np.zeros((3, 1)))

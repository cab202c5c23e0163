"""Errors that name the file, field or value at fault, in sentences a user can act on."""

from __future__ import annotations


class FumaroleError(Exception):
    """Base class of every error Fumarole raises on purpose."""


class GranuleError(FumaroleError):
    """A granule (one data file) cannot be used: it names the file and what is wrong with it."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CatalogError(FumaroleError):
    """A catalogue cannot be opened or an entry in it is wrong."""


class UserInputError(FumaroleError):
    """A value given by the user (CLI flag, dashboard field, API parameter) is out of range or unknown."""

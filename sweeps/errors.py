"""User errors: a bad study file, field, path or value. The CLI prints them and exits 2."""

from __future__ import annotations


class StudyError(Exception):
    """One or more problems with the study, each naming the field or file."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

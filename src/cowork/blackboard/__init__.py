"""The versioned blackboard of artifacts, and feedback threads on it."""

from cowork.blackboard.records import (
    ArtifactDiff,
    ArtifactVersion,
    BlackboardEntry,
    DiffChange,
    Feedback,
    FeedbackComment,
    FeedbackSeverity,
    FeedbackStatus,
)

__all__ = [
    "ArtifactDiff",
    "ArtifactVersion",
    "BlackboardEntry",
    "DiffChange",
    "Feedback",
    "FeedbackComment",
    "FeedbackSeverity",
    "FeedbackStatus",
]

"""The parts of the event payload sanitiser, one concept per module.

Import from :mod:`cowork.events.sanitize`, which documents the behaviour and re-exports every
public name; these modules are its internals:

* :mod:`.policy`: the limits and options (:class:`~.policy.SanitizePolicy`);
* :mod:`.redaction`: which mapping keys are secret and have their values redacted;
* :mod:`.masking`: personal data and credentials masked inside strings;
* :mod:`.limits`: rejecting a value with its path, or truncating it and recording where;
* :mod:`.walker`: the single pass that converts a value to JSON, using all of the above.
"""

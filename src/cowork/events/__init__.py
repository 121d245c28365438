"""Event log building blocks: names, patterns and payload sanitisation."""

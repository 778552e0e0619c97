"""A user module with global state: a fresh process (and every warm execution) sees COUNTER == 0."""

COUNTER = 0
VALUE = "first"

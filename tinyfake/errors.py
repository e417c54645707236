"""The one exception type for mistakes a user can make.

Every stage raises `UserError` for bad input (missing dataset, corrupt image,
unsupported op, model too big, no serial device, ...). The CLI prints its
message as one line and exits with status 2; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what to do."""

"""The API errors of the embedded Toxiproxy server, with Toxiproxy 2.x's messages and status codes.

Every error a client can see is an :class:`ApiError`; the HTTP layer turns it into
``{"error": message, "status": code}``.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to the API client with ``status`` and ``message``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def joined(self, detail: str) -> ApiError:
        """This error with ``": detail"`` appended, as Toxiproxy's ``joinError`` does."""
        return ApiError(f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ApiError("bad request body", 400)
MISSING_FIELD = ApiError("missing required field", 400)
PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


def server_error(message: str) -> ApiError:
    """An error without its own status (a failed bind, say): Toxiproxy answers those with 500."""
    return ApiError(message, 500)

"""Browser pages (server-rendered Jinja2 templates and their CSS), the sign-in cookie and CSRF."""

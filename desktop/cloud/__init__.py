"""The desktop app's cloud side: the API client, sign-in, account, cloud renders."""

"""Platform edges: TikTok Shop and Shoplazza wire formats, signatures and clients.

Nothing outside this package touches a platform's JSON or signing scheme.
"""

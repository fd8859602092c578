/** Where Roblox clients send, and receive, their CSRF token. */
export const CSRF_HEADER = 'x-csrf-token'

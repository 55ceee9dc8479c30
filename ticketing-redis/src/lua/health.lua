-- Health check of the script path: proves Lua runs and EVALSHA (with NOSCRIPT reload) works.
--
-- ARGV[1]: a random nonce
-- Returns: the nonce, unchanged.

return ARGV[1]

package sources

// RegisterIn exposes registerIn so that tests can check what Register
// refuses without adding to the real registry.
var RegisterIn = registerIn

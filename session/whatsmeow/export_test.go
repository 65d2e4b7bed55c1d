package whatsmeow

// GroupModeTTL is how long a Session trusts GetGroupInfo's answer.
const GroupModeTTL = groupModeTTL

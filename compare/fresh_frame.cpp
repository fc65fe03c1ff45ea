// kFreshFrame (parse.h) in a file of its own: a translation unit that sees its value
// may turn a copy of it back into a `rep stos`, as it does for `ParsedFrame{}`.
#include "compare/parse.h"

namespace lockstep {

const ParsedFrame kFreshFrame{};

}  // namespace lockstep

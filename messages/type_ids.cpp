#include "messages/type_ids.hpp"

#include "messages/error.hpp"

namespace embed {

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::embed>();
  cfg.add_error_category(caf::atom("embed"),
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = to_string(static_cast<ec>(code));
                           if (ctx.size() == 1 && ctx.match_element<std::string>(0))
                             out += ": " + ctx.get_as<std::string>(0);
                           return out;
                         });
}

} // namespace embed

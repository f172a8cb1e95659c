//+------------------------------------------------------------------+
//| QtCommand.mqh - strict parser for the daemon's commands           |
//|                                                                  |
//| One job: read one flat JSON object (PROTOCOL.md "Commands":      |
//| open, close, modify, snapshot, ping) into a QtCommand, or say    |
//| precisely why not. Accepted grammar (mirrored in Python by       |
//| tests/mql/test_wire.py, keep the two in step):                   |
//|   object  = ws "{" ws [ member *( ws "," ws member ) ] ws "}" ws |
//|   member  = string ws ":" ws value                               |
//|   value   = string / number / "true" / "false" / "null"          |
//|             (no nested objects or arrays: commands are flat)     |
//|   string  = '"' chars '"', escapes \" \\ \/ \b \f \n \r \t;      |
//|             \u escapes and raw control characters are refused;   |
//|             at most 256 characters                               |
//|   number  = JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
//|   ws      = space, tab, CR, LF                                   |
//| Members may come in any order; unknown members are ignored (the  |
//| contract may add fields); a known member given twice is refused. |
//| Field types: v integer 1; type, id, symbol, side strings; lots,  |
//| sl, tp, position_lots numbers; deviation_points, magic, ticket,  |
//| login integers (no fraction, no exponent, within a long:         |
//| |n| <= 9223372036854775807).                                     |
//| Required per type (as quantumtrader/protocol.py decode_command): |
//|   open:   symbol side lots sl tp deviation_points magic          |
//|   close:  ticket lots (position_lots optional, >= 0)             |
//|   modify: ticket sl tp                                           |
//|   open, close, modify: login optional (>= 1)                     |
//|   snapshot, ping: nothing else                                   |
//| Error codes (negative, never a terminal's own code):             |
//|   -1 malformed JSON, -2 bad version or unknown type,             |
//|   -3 bad id, -4 missing or invalid field.                        |
//+------------------------------------------------------------------+
#property strict

struct QtCommand
  {
   string            type;
   string            id;
   string            symbol;
   string            side;
   double            lots;
   double            sl;
   double            tp;
   double            position_lots;   // close: the position's lots when the daemon asked (0: not said)
   long              deviation_points;
   long              magic;
   long              ticket;
   long              login;           // trades: the account the daemon meant (0: not said)
   long              v;
   bool              has_v;
   bool              has_type;
   bool              has_id;
   bool              has_symbol;
   bool              has_side;
   bool              has_lots;
   bool              has_sl;
   bool              has_tp;
   bool              has_position_lots;
   bool              has_deviation_points;
   bool              has_magic;
   bool              has_ticket;
   bool              has_login;
  };

//--- value kinds of the parser
//--- 1 string, 2 integer number, 3 other number, 4 true/false, 5 null

void QtCommandReset(QtCommand &cmd)
  {
   cmd.type = "";
   cmd.id = "";
   cmd.symbol = "";
   cmd.side = "";
   cmd.lots = 0.0;
   cmd.sl = 0.0;
   cmd.tp = 0.0;
   cmd.position_lots = 0.0;
   cmd.deviation_points = 0;
   cmd.magic = 0;
   cmd.ticket = 0;
   cmd.login = 0;
   cmd.v = 0;
   cmd.has_v = false;
   cmd.has_type = false;
   cmd.has_id = false;
   cmd.has_symbol = false;
   cmd.has_side = false;
   cmd.has_lots = false;
   cmd.has_sl = false;
   cmd.has_tp = false;
   cmd.has_position_lots = false;
   cmd.has_deviation_points = false;
   cmd.has_magic = false;
   cmd.has_ticket = false;
   cmd.has_login = false;
  }

//--- true for a character of [A-Za-z0-9]
bool QtIsAlnum(ushort c)
  {
   return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }

bool QtIsDigit(ushort c)
  {
   return c >= '0' && c <= '9';
  }

//--- a command id: 1-20 characters of [A-Za-z0-9]
bool QtValidId(const string &id)
  {
   int len = StringLen(id);
   if(len < 1 || len > 20)
      return false;
   for(int i = 0; i < len; i++)
      if(!QtIsAlnum(StringGetCharacter(id, i)))
         return false;
   return true;
  }

//--- a symbol as the contract allows: 1-32 characters of [A-Za-z0-9._#+-]
bool QtValidSymbol(const string &symbol)
  {
   int len = StringLen(symbol);
   if(len < 1 || len > 32)
      return false;
   for(int i = 0; i < len; i++)
     {
      ushort c = StringGetCharacter(symbol, i);
      if(!(QtIsAlnum(c) || c == '.' || c == '_' || c == '#' || c == '+' || c == '-'))
         return false;
     }
   return true;
  }

//--- skip JSON whitespace
void QtSkipWs(const string &text, int len, int &pos)
  {
   while(pos < len)
     {
      ushort c = StringGetCharacter(text, pos);
      if(c != ' ' && c != '\t' && c != '\n' && c != '\r')
         return;
      pos++;
     }
  }

//--- a string literal at pos (which must hold '"'); pos ends after the closing quote
bool QtParseString(const string &text, int len, int &pos, string &out, string &err)
  {
   out = "";
   if(pos >= len || StringGetCharacter(text, pos) != '"')
     {
      err = "expected a string at offset " + IntegerToString(pos);
      return false;
     }
   pos++;
   int count = 0;
   while(pos < len)
     {
      ushort c = StringGetCharacter(text, pos);
      if(c == '"')
        {
         pos++;
         return true;
        }
      if(c < 0x20)
        {
         err = "control character inside a string at offset " + IntegerToString(pos);
         return false;
        }
      if(c == '\\')
        {
         if(pos + 1 >= len)
            break;
         ushort e = StringGetCharacter(text, pos + 1);
         string piece = "";
         if(e == '"')
            piece = "\"";
         else if(e == '\\')
            piece = "\\";
         else if(e == '/')
            piece = "/";
         else if(e == 'b')
            piece = ShortToString(8);
         else if(e == 'f')
            piece = ShortToString(12);
         else if(e == 'n')
            piece = "\n";
         else if(e == 'r')
            piece = "\r";
         else if(e == 't')
            piece = "\t";
         else
           {
            err = "unsupported escape in a string at offset " + IntegerToString(pos);
            return false;
           }
         out = out + piece;
         pos += 2;
        }
      else
        {
         int start = pos;
         while(pos < len)
           {
            ushort d = StringGetCharacter(text, pos);
            if(d == '"' || d == '\\' || d < 0x20)
               break;
            pos++;
           }
         out = out + StringSubstr(text, start, pos - start);
        }
      count = StringLen(out);
      if(count > 256)
        {
         err = "string longer than 256 characters";
         return false;
        }
     }
   err = "unterminated string";
   return false;
  }

//--- a JSON number at pos; token receives its text, is_int whether it has no
//--- fraction and no exponent
bool QtParseNumber(const string &text, int len, int &pos, string &token, bool &is_int, string &err)
  {
   int start = pos;
   is_int = true;
   if(pos < len && StringGetCharacter(text, pos) == '-')
      pos++;
   if(pos >= len || !QtIsDigit(StringGetCharacter(text, pos)))
     {
      err = "bad number at offset " + IntegerToString(start);
      return false;
     }
   if(StringGetCharacter(text, pos) == '0')
      pos++;
   else
      while(pos < len && QtIsDigit(StringGetCharacter(text, pos)))
         pos++;
   if(pos < len && StringGetCharacter(text, pos) == '.')
     {
      is_int = false;
      pos++;
      if(pos >= len || !QtIsDigit(StringGetCharacter(text, pos)))
        {
         err = "bad fraction at offset " + IntegerToString(start);
         return false;
        }
      while(pos < len && QtIsDigit(StringGetCharacter(text, pos)))
         pos++;
     }
   if(pos < len && (StringGetCharacter(text, pos) == 'e' || StringGetCharacter(text, pos) == 'E'))
     {
      is_int = false;
      pos++;
      if(pos < len && (StringGetCharacter(text, pos) == '+' || StringGetCharacter(text, pos) == '-'))
         pos++;
      if(pos >= len || !QtIsDigit(StringGetCharacter(text, pos)))
        {
         err = "bad exponent at offset " + IntegerToString(start);
         return false;
        }
      while(pos < len && QtIsDigit(StringGetCharacter(text, pos)))
         pos++;
     }
   token = StringSubstr(text, start, pos - start);
   if(is_int)
     {
      // a long holds 19 digits up to 9223372036854775807 (MT5 tickets are ulong
      // but never that large); anything beyond would overflow StringToInteger
      string magnitude = token;
      if(StringGetCharacter(token, 0) == '-')
         magnitude = StringSubstr(token, 1);
      int digits = StringLen(magnitude);
      if(digits > 19 || (digits == 19 && StringCompare(magnitude, "9223372036854775807") > 0))
        {
         err = "integer out of range at offset " + IntegerToString(start);
         return false;
        }
     }
   return true;
  }

//--- true when text continues at pos with the given literal
bool QtMatchLiteral(const string &text, int len, int pos, string literal)
  {
   int n = StringLen(literal);
   if(pos + n > len)
      return false;
   return StringSubstr(text, pos, n) == literal;
  }

//--- one value at pos: kind as listed above, text for strings, token for numbers
bool QtParseValue(const string &text, int len, int &pos, int &kind, string &str, string &token, string &err)
  {
   if(pos >= len)
     {
      err = "expected a value at the end of the text";
      return false;
     }
   ushort c = StringGetCharacter(text, pos);
   if(c == '"')
     {
      kind = 1;
      return QtParseString(text, len, pos, str, err);
     }
   if(c == '-' || QtIsDigit(c))
     {
      bool is_int = true;
      if(!QtParseNumber(text, len, pos, token, is_int, err))
         return false;
      if(is_int)
         kind = 2;
      else
         kind = 3;
      return true;
     }
   if(QtMatchLiteral(text, len, pos, "true"))
     {
      kind = 4;
      pos += 4;
      return true;
     }
   if(QtMatchLiteral(text, len, pos, "false"))
     {
      kind = 4;
      pos += 5;
      return true;
     }
   if(QtMatchLiteral(text, len, pos, "null"))
     {
      kind = 5;
      pos += 4;
      return true;
     }
   if(c == '{' || c == '[')
     {
      err = "nested objects and arrays are not accepted in a command (offset " + IntegerToString(pos) + ")";
      return false;
     }
   err = "unexpected character at offset " + IntegerToString(pos);
   return false;
  }

//--- store one member in cmd; code/err describe a refusal
bool QtStoreMember(QtCommand &cmd, const string &key, int kind, const string &str, const string &token, int &code, string &err)
  {
   code = -4;
   if(key == "v")
     {
      if(cmd.has_v)
        {
         err = "field v given twice";
         return false;
        }
      if(kind != 2)
        {
         code = -2;
         err = "v must be the integer 1";
         return false;
        }
      cmd.v = StringToInteger(token);
      cmd.has_v = true;
      return true;
     }
   if(key == "type" || key == "id" || key == "symbol" || key == "side")
     {
      if((key == "type" && cmd.has_type) || (key == "id" && cmd.has_id) ||
         (key == "symbol" && cmd.has_symbol) || (key == "side" && cmd.has_side))
        {
         err = "field " + key + " given twice";
         return false;
        }
      if(kind != 1)
        {
         if(key == "id")
            code = -3;
         if(key == "type")
            code = -2;
         err = key + " must be a string";
         return false;
        }
      if(key == "type")
        {
         cmd.type = str;
         cmd.has_type = true;
        }
      else if(key == "id")
        {
         cmd.id = str;
         cmd.has_id = true;
        }
      else if(key == "symbol")
        {
         cmd.symbol = str;
         cmd.has_symbol = true;
        }
      else
        {
         cmd.side = str;
         cmd.has_side = true;
        }
      return true;
     }
   if(key == "lots" || key == "sl" || key == "tp" || key == "position_lots")
     {
      if((key == "lots" && cmd.has_lots) || (key == "sl" && cmd.has_sl) || (key == "tp" && cmd.has_tp) ||
         (key == "position_lots" && cmd.has_position_lots))
        {
         err = "field " + key + " given twice";
         return false;
        }
      if(kind != 2 && kind != 3)
        {
         err = key + " must be a number";
         return false;
        }
      double value = StringToDouble(token);
      if(!MathIsValidNumber(value))
        {
         err = key + " is out of range";
         return false;
        }
      if(key == "lots")
        {
         cmd.lots = value;
         cmd.has_lots = true;
        }
      else if(key == "sl")
        {
         cmd.sl = value;
         cmd.has_sl = true;
        }
      else if(key == "position_lots")
        {
         cmd.position_lots = value;
         cmd.has_position_lots = true;
        }
      else
        {
         cmd.tp = value;
         cmd.has_tp = true;
        }
      return true;
     }
   if(key == "deviation_points" || key == "magic" || key == "ticket" || key == "login")
     {
      if((key == "deviation_points" && cmd.has_deviation_points) ||
         (key == "magic" && cmd.has_magic) || (key == "ticket" && cmd.has_ticket) || (key == "login" && cmd.has_login))
        {
         err = "field " + key + " given twice";
         return false;
        }
      if(kind != 2)
        {
         err = key + " must be an integer";
         return false;
        }
      long number = StringToInteger(token);
      if(key == "deviation_points")
        {
         cmd.deviation_points = number;
         cmd.has_deviation_points = true;
        }
      else if(key == "magic")
        {
         cmd.magic = number;
         cmd.has_magic = true;
        }
      else if(key == "login")
        {
         cmd.login = number;
         cmd.has_login = true;
        }
      else
        {
         cmd.ticket = number;
         cmd.has_ticket = true;
        }
      return true;
     }
   return true;   // a member this version does not know: ignored
  }

//--- the checks per command type, after the whole object was read
bool QtValidateCommand(QtCommand &cmd, int &code, string &err)
  {
   if(!cmd.has_v || cmd.v != 1)
     {
      code = -2;
      err = "v must be the integer 1";
      return false;
     }
   if(!cmd.has_id || !QtValidId(cmd.id))
     {
      code = -3;
      err = "id must be 1-20 characters of [A-Za-z0-9]";
      return false;
     }
   if(!cmd.has_type)
     {
      code = -2;
      err = "missing field type";
      return false;
     }
   code = -4;
   if(cmd.type == "open")
     {
      if(!cmd.has_symbol || !QtValidSymbol(cmd.symbol))
        {
         err = "symbol must be 1-32 characters of [A-Za-z0-9._#+-]";
         return false;
        }
      if(!cmd.has_side || (cmd.side != "buy" && cmd.side != "sell"))
        {
         err = "side must be buy or sell";
         return false;
        }
      if(!cmd.has_lots || cmd.lots <= 0.0)
        {
         err = "lots must be a number > 0";
         return false;
        }
      if(!cmd.has_sl || cmd.sl < 0.0 || !cmd.has_tp || cmd.tp < 0.0)
        {
         err = "sl and tp must be numbers >= 0 (0 = none)";
         return false;
        }
      if(!cmd.has_deviation_points || cmd.deviation_points < 0)
        {
         err = "deviation_points must be an integer >= 0";
         return false;
        }
      if(!cmd.has_magic || cmd.magic < 0)
        {
         err = "magic must be an integer >= 0";
         return false;
        }
      return true;
     }
   if(cmd.type == "close")
     {
      if(!cmd.has_ticket || cmd.ticket < 1)
        {
         err = "ticket must be an integer >= 1";
         return false;
        }
      if(!cmd.has_lots || cmd.lots < 0.0)
        {
         err = "lots must be a number >= 0 (0 = the whole position)";
         return false;
        }
      if(cmd.position_lots < 0.0)
        {
         err = "position_lots must be a number >= 0";
         return false;
        }
      return true;
     }
   if(cmd.type == "modify")
     {
      if(!cmd.has_ticket || cmd.ticket < 1)
        {
         err = "ticket must be an integer >= 1";
         return false;
        }
      if(!cmd.has_sl || cmd.sl < 0.0 || !cmd.has_tp || cmd.tp < 0.0)
        {
         err = "sl and tp must be numbers >= 0 (0 = none)";
         return false;
        }
      return true;
     }
   if(cmd.type == "snapshot" || cmd.type == "ping")
      return true;
   code = -2;
   err = "unknown command type";
   return false;
  }

//--- parse and validate one command. On false, code and err say why and
//--- cmd.id holds the id if one valid id was read (for the reply).
bool QtParseCommand(const string &text, QtCommand &cmd, int &code, string &err)
  {
   QtCommandReset(cmd);
   code = -1;
   err = "";
   int len = StringLen(text);
   int pos = 0;
   QtSkipWs(text, len, pos);
   if(pos >= len || StringGetCharacter(text, pos) != '{')
     {
      err = "a command must be one JSON object";
      return false;
     }
   pos++;
   QtSkipWs(text, len, pos);
   bool ok = true;
   if(pos < len && StringGetCharacter(text, pos) == '}')
      pos++;
   else
     {
      while(true)
        {
         string key = "";
         if(!QtParseString(text, len, pos, key, err))
           {
            code = -1;
            ok = false;
            break;
           }
         QtSkipWs(text, len, pos);
         if(pos >= len || StringGetCharacter(text, pos) != ':')
           {
            code = -1;
            err = "expected ':' at offset " + IntegerToString(pos);
            ok = false;
            break;
           }
         pos++;
         QtSkipWs(text, len, pos);
         int kind = 0;
         string str = "";
         string token = "";
         if(!QtParseValue(text, len, pos, kind, str, token, err))
           {
            code = -1;
            ok = false;
            break;
           }
         if(!QtStoreMember(cmd, key, kind, str, token, code, err))
           {
            ok = false;
            break;
           }
         QtSkipWs(text, len, pos);
         if(pos < len && StringGetCharacter(text, pos) == ',')
           {
            pos++;
            QtSkipWs(text, len, pos);
            continue;
           }
         if(pos < len && StringGetCharacter(text, pos) == '}')
           {
            pos++;
            break;
           }
         code = -1;
         err = "expected ',' or '}' at offset " + IntegerToString(pos);
         ok = false;
         break;
        }
     }
   if(ok)
     {
      QtSkipWs(text, len, pos);
      if(pos != len)
        {
         code = -1;
         err = "unexpected text after the object at offset " + IntegerToString(pos);
         ok = false;
        }
     }
   if(!ok)
     {
      if(!QtValidId(cmd.id))
         cmd.id = "";
      return false;
     }
   if(!QtValidateCommand(cmd, code, err))
     {
      if(!QtValidId(cmd.id))
         cmd.id = "";
      return false;
     }
   return true;
  }
//+------------------------------------------------------------------+

//+------------------------------------------------------------------+
//| QtJson.mqh - building JSON text (QuantumTrader bridge)            |
//|                                                                  |
//| One job: turn MQL values into JSON fragments. Strings are quoted |
//| and escaped; numbers are written with an explicit number of      |
//| decimals (a price with its symbol's digits, never %f's 6), and a |
//| value that is not a finite number is written as 0 so the output  |
//| is always valid JSON. Shared by the MT4 and the MT5 bridge.      |
//+------------------------------------------------------------------+
#property strict

//--- one hexadecimal digit (0..15) as a character
string QtHexDigit(int value)
  {
   return StringSubstr("0123456789abcdef", value & 15, 1);
  }

//--- a JSON string literal, with quotes: escapes ", \ and control characters.
//--- Characters >= 0x20 other than " and \ are copied; the socket layer
//--- encodes the whole text as UTF-8.
string QtJsonString(string text)
  {
   string out = "\"";
   int len = StringLen(text);
   int start = 0;                       // first character not yet copied
   for(int i = 0; i < len; i++)
     {
      ushort c = StringGetCharacter(text, i);
      string esc = "";
      if(c == '"')
         esc = "\\\"";
      else if(c == '\\')
         esc = "\\\\";
      else if(c == '\n')
         esc = "\\n";
      else if(c == '\r')
         esc = "\\r";
      else if(c == '\t')
         esc = "\\t";
      else if(c < 0x20)
         esc = "\\u00" + QtHexDigit(c >> 4) + QtHexDigit(c);
      if(esc != "")
        {
         if(i > start)
            out = out + StringSubstr(text, start, i - start);
         out = out + esc;
         start = i + 1;
        }
     }
   if(len > start)
      out = out + StringSubstr(text, start, len - start);
   return out + "\"";
  }

//--- a JSON number with a fixed number of decimals (0..8)
string QtJsonNumber(double value, int digits)
  {
   if(!MathIsValidNumber(value))
      return "0";
   if(digits < 0)
      digits = 0;
   if(digits > 8)
      digits = 8;
   return DoubleToString(value, digits);
  }

//--- a JSON integer
string QtJsonInt(long value)
  {
   return IntegerToString(value);
  }

//--- a JSON boolean
string QtJsonBool(bool value)
  {
   if(value)
      return "true";
   return "false";
  }

//--- "name": followed by a value that is already JSON text
string QtJsonField(string name, string json_value)
  {
   return "\"" + name + "\":" + json_value;
  }

//--- the number of decimals a step such as a lot step (0.01) needs: 0..8
int QtStepDigits(double step)
  {
   if(!MathIsValidNumber(step) || step <= 0.0)
      return 2;
   for(int d = 0; d < 8; d++)
     {
      double scaled = step * MathPow(10.0, d);
      if(MathAbs(scaled - MathRound(scaled)) < 1e-7)
         return d;
     }
   return 8;
  }

//--- a JSON array of strings from an array of MQL strings
string QtJsonStringArray(string &items[], int count)
  {
   string out = "[";
   for(int i = 0; i < count; i++)
     {
      if(i > 0)
         out = out + ",";
      out = out + QtJsonString(items[i]);
     }
   return out + "]";
  }
//+------------------------------------------------------------------+

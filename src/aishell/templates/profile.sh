# aishell: login shells (e.g. `aishell attach NAME --shell`) get the sandbox PATH.
case ":$PATH:" in
    *:/tools/npm/bin:*) ;;
    *) PATH="/tools/npm/bin:/tools/bin:$PATH" ;;
esac
case ":$PATH:" in
    *":$HOME/.local/bin:"*) ;;
    *) PATH="$HOME/.local/bin:$PATH" ;;
esac
export PATH NODE_PATH=/tools/npm/lib/node_modules

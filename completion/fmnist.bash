# bash completion for fmnist: verbs, each verb's flags, and the values of the
# flags that take a known set (recipes, sets, splits, layouts); files
# otherwise. Installed as share/bash-completion/completions/fmnist.
_fmnist() {
    local cur prev verb flags
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    verb=${COMP_WORDS[1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "data convert show summary train eval predict quantize export report bench --version --help" -- "$cur"))
        return
    fi
    case $prev in
    --recipe) COMPREPLY=($(compgen -W "notebook fast best" -- "$cur")); compopt -o default; return ;;
    --set) [ "$verb" = show ] && COMPREPLY=($(compgen -W "train test" -- "$cur")); return ;;
    --split) COMPREPLY=($(compgen -W "train val test" -- "$cur")); return ;;
    --to) COMPREPLY=($(compgen -W "csv idx" -- "$cur")); return ;;
    --out) if [ "$verb" = report ]; then compopt -o default; else COMPREPLY=($(compgen -d -- "$cur")); fi; return ;;
    --data | --run | --resume) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --model) COMPREPLY=($(compgen -W "fashion-cnn fashion-cnn-bn" -- "$cur")); compopt -o default; return ;;
    --weights | --onnx | --output | -o) compopt -o default; return ;;
    --epochs | --batch | --lr | --seed | --threads | --limit | --val-split | --index | --scale | \
        --checkpoint-steps | --steps | --warmup | --infer-batch | --calibration-images) return ;;
    esac
    case $verb in
    data) flags="--data --val-split --seed --help" ;;
    convert) flags="--to --help" ;;
    show) flags="--data --set --index --grid --scale -o --help" ;;
    summary) flags="-h --help" ;;
    train) flags="--recipe --set --precision --data --model --epochs --batch --lr --seed --threads --limit
                  --val-split --no-augment --out --overwrite --resume --checkpoint-steps --test
                  --quiet --help" ;;
    eval) flags="--weights --data --split --val-split --seed --limit --no-tta --json --help" ;;
    predict) flags="--weights --invert --no-tta --json --help" ;;
    quantize) flags="--weights --output -o --data --calibration-images --threads --no-eval --help" ;;
    export) flags="--weights --onnx --no-tta --help" ;;
    report) flags="--run --data --out -o --threads --no-tta --help" ;;
    bench) flags="--model --threads --batch --steps --warmup --infer-batch --layers --int8 --precision
                  --help" ;;
    *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        compopt -o default
    fi
}
complete -F _fmnist fmnist
